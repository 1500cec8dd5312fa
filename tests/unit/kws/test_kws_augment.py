"""kws augmentation on hand-built log-mel batches: shift, gain and noise with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audioprobe.kws.augment import EPS, Augment
from audioprobe.kws.params import KwsAugment


def _aug(**kw) -> Augment:
    base = {"max_shift": 0, "gain_db": 0.0, "noise_prob": 0.0, "snr_low": 10.0, "snr_high": 10.0, "noise": None}
    return Augment(**{**base, **kw})


def _ramp(b: int = 4, t: int = 6, f: int = 3) -> torch.Tensor:
    return torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(b, t, f).clone()  # (B, T, F)


def test_identity_settings_leave_the_batch_unchanged():
    x = _ramp()
    out = _aug()(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_shift_moves_frames_and_repeats_the_edges():
    x = _ramp(b=64)
    out = _aug(max_shift=2)(x, torch.Generator().manual_seed(1))
    for row in out[:, :, 0]:
        s = int(row[3] - 3) * -1  # frame 3 now holds frame 3 - s
        src = [min(max(t - s, 0), 5) for t in range(6)]
        assert row.tolist() == [float(v) for v in src] and -2 <= s <= 2
    shifts = {int(3 - row[3]) for row in out[:, :, 0]}
    assert shifts == {-2, -1, 0, 1, 2}  # every shift drawn in 64 clips
    assert torch.equal(x, _ramp(b=64))  # input untouched


def test_gain_adds_log_power_gain():
    x = torch.zeros(200, 5, 2)
    out = _aug(gain_db=6.0)(x, torch.Generator().manual_seed(2))
    offsets = out[:, 0, 0]
    assert torch.allclose(out, offsets.view(-1, 1, 1).expand_as(out))  # one offset per clip
    bound = 6.0 * math.log(10.0) / 10.0  # +6 dB power = x·10^0.6 -> + 0.6·ln 10
    assert offsets.abs().max() <= bound + 1e-6 and offsets.abs().max() > 0.8 * bound


def test_noise_is_mixed_at_the_drawn_snr():
    # speech power 1 everywhere, noise power 4 everywhere; SNR 10 dB -> noise scaled to 0.1
    x = torch.full((3, 5, 2), math.log(1.0 + EPS))
    noise = torch.full((2, 5, 2), math.log(4.0 + EPS))
    out = _aug(noise_prob=1.0, noise=noise)(x, torch.Generator().manual_seed(3))
    assert torch.allclose(out.exp(), torch.full_like(out, 1.1), atol=1e-5)


def test_same_generator_seed_gives_the_same_batch():
    x = torch.randn(8, 10, 4)
    aug = _aug(max_shift=3, gain_db=6.0, noise_prob=0.5, snr_low=5.0, snr_high=20.0, noise=torch.randn(3, 10, 4))
    a = aug(x, torch.Generator().manual_seed(9))
    b = aug(x, torch.Generator().manual_seed(9))
    c = aug(x, torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_from_params_without_noise_segments_skips_noise():
    aug = Augment.from_params(KwsAugment(enabled=True, noise_prob=1.0), np.zeros((0, 10, 4), np.float32))
    assert aug.noise is None
    x = torch.zeros(2, 10, 4)
    assert aug(x, torch.Generator().manual_seed(0)).shape == x.shape


def test_params_reject_reversed_snr_range():
    with pytest.raises(ValueError, match="low <= high"):
        KwsAugment(snr_db=[20.0, 5.0])
