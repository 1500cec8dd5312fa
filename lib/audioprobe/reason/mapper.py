"""The mapper: encoder frames -> LM-embedding prefix (Linear -> GELU -> Linear), clips joined by a separator."""

from __future__ import annotations

import torch
from torch import nn


class AudioMapper(nn.Module):
    """Map each question's clips ([F_k, enc_dim] each) to one prefix [sum F_k + n_clips - 1, lm_dim].

    Inputs are standardised with train-split per-dimension statistics (frozen buffers
    `mean`/`std`, set once before training). A two-audio question gets clip 1's frames,
    one learned separator embedding, then clip 2's frames: one prefix, so the LM sees
    the order of the clips.
    """

    def __init__(self, enc_dim: int, lm_dim: int):
        super().__init__()
        hidden = 2 * max(enc_dim, lm_dim)
        self.net = nn.Sequential(nn.Linear(enc_dim, hidden), nn.GELU(), nn.Linear(hidden, lm_dim))
        self.separator = nn.Parameter(torch.randn(lm_dim) * 0.02)
        self.register_buffer("mean", torch.zeros(enc_dim))
        self.register_buffer("std", torch.ones(enc_dim))
        self.enc_dim, self.lm_dim = enc_dim, lm_dim

    def set_norm(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Fix the input standardisation (train-split statistics; std floored to avoid blow-ups)."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3))

    def forward(self, clips: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        """Return one prefix [P_i, lm_dim] per question from its list of clip frames [F_k, enc_dim]."""
        flat = [c for item in clips for c in item]
        sizes = [c.shape[0] for c in flat]
        x = torch.cat(flat, dim=0)  # (sum F, enc_dim): one MLP call for the whole batch
        y = self.net((x - self.mean) / self.std)  # (sum F, lm_dim)
        parts = iter(torch.split(y, sizes, dim=0))
        out = []
        for item in clips:
            pieces: list[torch.Tensor] = []
            for k in range(len(item)):
                if k:
                    pieces.append(self.separator[None, :])  # (1, lm_dim)
                pieces.append(next(parts))
            out.append(torch.cat(pieces, dim=0))  # (P_i, lm_dim)
        return out
