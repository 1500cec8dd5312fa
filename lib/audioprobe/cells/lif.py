"""The learnable LIF soft gate of the kws experiment (kws lane README, "LIF gate") and its identity twin.

Both gates return `(y, fire)`: the fire values are an explicit output so the analysis
stage reads them from the forward pass instead of scraping them with hooks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Definition constants (kws lane README): θ = |t|·0.1, t₀ = 0.01; λ = sigmoid(l), l₀ = 2;
# k = softplus(s), s₀ = 2.
THRESHOLD_SCALE = 0.1
T_INIT = 0.01
L_INIT = 2.0
S_INIT = 2.0


class LIFGate(nn.Module):
    """Stateless per-unit leaky integrate-and-fire soft gate with 3 learnable parameters per unit.

    fire = sigmoid(k·(|x| − θ)); y = x·(fire + λ·(1 − fire)): a unit that fires passes x
    unchanged, one that does not is leaked by λ. With `norm_preserve` the output is rescaled
    to y·‖x‖/‖y‖, the norm taken per position (over the feature dim, i.e. per batch item and
    time step) so the gate redistributes energy across units without changing the size of
    the residual update; the origin paper writes this rescale but its code does not apply it.
    """

    def __init__(self, n_embd: int, norm_preserve: bool = False):
        super().__init__()
        self.norm_preserve = norm_preserve
        self.t = nn.Parameter(torch.full((n_embd,), T_INIT))
        self.l = nn.Parameter(torch.full((n_embd,), L_INIT))
        self.s = nn.Parameter(torch.full((n_embd,), S_INIT))

    @property
    def threshold(self) -> Tensor:
        """θ = |t|·0.1 per unit, shape (n_embd,)."""
        return self.t.abs() * THRESHOLD_SCALE

    @property
    def leak(self) -> Tensor:
        """λ = sigmoid(l) per unit."""
        return torch.sigmoid(self.l)

    @property
    def steepness(self) -> Tensor:
        """k = softplus(s) per unit."""
        return F.softplus(self.s)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (y, fire), both shaped like x (..., n_embd)."""
        fire = torch.sigmoid(self.steepness * (x.abs() - self.threshold))
        leak = self.leak
        y = x * (fire + leak * (1.0 - fire))
        if self.norm_preserve:
            nx = torch.linalg.vector_norm(x, dim=-1, keepdim=True)  # (..., 1)
            ny = torch.linalg.vector_norm(y, dim=-1, keepdim=True)  # (..., 1)
            # fire + λ(1 − fire) > 0, so ‖y‖ = 0 only where ‖x‖ = 0: leave y (all zeros) as is
            # there; dividing by a substituted 1 keeps the gradient finite (no 0/0 in backward).
            y = y * (nx / torch.where(ny > 0, ny, torch.ones_like(ny)))
        return y, fire

    def extra_repr(self) -> str:
        return f"n_embd={self.t.numel()}, norm_preserve={self.norm_preserve}"


class IdentityGate(nn.Module):
    """The base condition's gate: y = x and fire ≡ 1 (every unit always fires)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (x, ones shaped like x)."""
        return x, torch.ones_like(x)
