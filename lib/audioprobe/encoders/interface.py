"""The waveform-encoder interface every experiment shares: encode(wave[B, S]) -> [B, F, dim].

An encoder runs at its own `sample_rate` and emits one frame per `hop` samples
(`frame_rate = sample_rate / hop`). A wave of n samples yields ceil(n / hop)
frames — the count Mimi itself returns; the last frame may cover a partial hop. In a
right-padded batch, frames past an item's own count are padding: `frame_mask` marks
the valid ones, and `encode_batch` pads, encodes and slices so that each item's
frames equal its batch-1 encoding (up to float rounding).
"""

from __future__ import annotations

import numpy as np
import torch


class Encoder(torch.nn.Module):
    """Base of all encoders; subclasses set the attributes below and implement `encode`."""

    name: str
    sample_rate: int  # Hz of the waveform `encode` expects
    hop: int  # samples per output frame
    frame_rate: float  # frames per second (= sample_rate / hop)
    dim: int  # features per frame
    provenance: dict[str, str]  # name, weights (path / hub id / random-init / none), sha256

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Return frames [B, ceil(S / hop), dim] of waves [B, S] at `sample_rate`."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        buf = next(self.parameters(), None)
        if buf is None:
            buf = next(self.buffers(), None)
        return buf.device if buf is not None else torch.device("cpu")

    @property
    def is_random(self) -> bool:
        """True when the weights are a random initialisation (never a result to publish)."""
        return self.provenance.get("weights") == "random-init"

    def num_frames(self, n_samples: int) -> int:
        """Frames emitted for n samples: ceil(n / hop)."""
        return -(-int(n_samples) // self.hop)

    def frame_mask(self, lengths: torch.Tensor) -> torch.Tensor:
        """Return bool [B, F] marking real frames of a padded batch with per-item lengths [B]."""
        lengths = torch.as_tensor(lengths)
        counts = -(-lengths // self.hop)  # (B,)
        frames = int(counts.max()) if counts.numel() else 0
        return torch.arange(frames, device=counts.device)[None, :] < counts[:, None]  # (B, F)

    @torch.inference_mode()
    def encode_batch(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Return one float32 [n_frames_i, dim] array per 1-D wave, via one right-padded batch."""
        lengths = [int(w.shape[0]) for w in waves]
        batch = np.zeros((len(waves), max(lengths)), dtype=np.float32)  # (B, S)
        for i, w in enumerate(waves):
            batch[i, : lengths[i]] = w
        out = self.encode(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()  # (B, F, D)
        if out.shape[1] != self.num_frames(max(lengths)) or out.shape[2] != self.dim:
            raise RuntimeError(
                f"{self.name} encoder returned {tuple(out.shape)}, expected "
                f"(B, {self.num_frames(max(lengths))}, {self.dim})"
            )
        return [np.ascontiguousarray(out[i, : self.num_frames(n)]) for i, n in enumerate(lengths)]
