"""Light training-time augmentation of cached log-mel clips: time shift, gain, background noise.

Everything works on the cached features x = log(mel power + 1e-9) [B, T, n_mels], so
augmentation costs a few tensor ops per batch instead of a second STFT pass:

- time shift: each clip moves by s ~ U{-max_shift..max_shift} frames; frames shifted in
  repeat the clip's first/last frame (the silence around the word).
- gain: a power gain of g dB, g ~ U[-gain_db, gain_db], adds g·ln(10)/10 to every bin.
- noise: with probability noise_prob, a random 1 s segment of `_background_noise_`
  (cached by kws_features) is added in the power domain at an SNR ~ U[snr_low, snr_high]
  dB, the SNR measured on mel power summed over the clip.

Draws come from the generator the training loop passes in (seeded per run), so a run's
augmented batches are the same every time it is rerun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

EPS = 1e-9  # the floor inside log(mel power + EPS), as in audioprobe.audio.mel.log_mel


@dataclass(frozen=True)
class Augment:
    max_shift: int  # frames
    gain_db: float
    noise_prob: float
    snr_low: float
    snr_high: float
    noise: torch.Tensor | None = None  # (K, T, n_mels) log-mel segments; None: no noise mixing

    @classmethod
    def from_params(cls, cfg, noise: np.ndarray | None) -> Augment:
        """Build from params kws.train.augment and the cache's noise segments (may be empty)."""
        segs = torch.from_numpy(np.ascontiguousarray(noise)) if noise is not None and len(noise) else None
        return cls(cfg.max_shift, cfg.gain_db, cfg.noise_prob, cfg.snr_db[0], cfg.snr_db[1], segs)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Return an augmented copy of x (B, T, n_mels); x itself is left unchanged."""
        b, t, _ = x.shape
        # Every draw happens whatever the settings, so changing one setting does not
        # change the random numbers the others see.
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (b,), generator=gen)
        gain = (torch.rand(b, generator=gen) * 2.0 - 1.0) * self.gain_db
        use_noise = torch.rand(b, generator=gen) < self.noise_prob
        snr = self.snr_low + torch.rand(b, generator=gen) * (self.snr_high - self.snr_low)
        n_seg = 0 if self.noise is None else self.noise.shape[0]
        seg = torch.randint(0, max(1, n_seg), (b,), generator=gen)

        src = (torch.arange(t).unsqueeze(0) - shift.unsqueeze(1)).clamp_(0, t - 1)  # (B, T)
        out = torch.gather(x, 1, src.unsqueeze(-1).expand_as(x))  # (B, T, n_mels)
        out = out + (gain * math.log(10.0) / 10.0).view(b, 1, 1)
        if self.noise is not None and self.noise.shape[1:] == x.shape[1:] and bool(use_noise.any()):
            p_x = out.exp() - EPS  # (B, T, n_mels) mel power
            p_n = self.noise[seg].exp() - EPS  # (B, T, n_mels)
            scale = p_x.sum(dim=(1, 2)) / (p_n.sum(dim=(1, 2)).clamp_min(EPS) * 10.0 ** (snr / 10.0))  # (B,)
            scale = torch.where(use_noise, scale, torch.zeros_like(scale))
            out = (p_x.clamp_min(0.0) + scale.view(b, 1, 1) * p_n.clamp_min(0.0) + EPS).log()
        return out
