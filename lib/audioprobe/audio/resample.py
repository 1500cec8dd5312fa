"""Polyphase resampling with scipy (no torchaudio: its wheels are CUDA-only here)."""

from __future__ import annotations

from math import gcd

import numpy as np


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Return `wave` resampled from sr_in to sr_out along the last axis (float32)."""
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return np.asarray(wave, dtype=np.float32)
    # Imported here: scipy.signal takes ~3 s to import, and most callers never resample
    # (16 kHz corpora read at 16 kHz).
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    out = resample_poly(np.asarray(wave, dtype=np.float64), sr_out // g, sr_in // g, axis=-1)
    return out.astype(np.float32)
