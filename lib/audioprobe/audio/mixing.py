"""Mix a signal with noise at a target SNR."""

from __future__ import annotations

import numpy as np


def rms(x: np.ndarray) -> float:
    """Root mean square of x (float64)."""
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Return signal + g·noise with g chosen so 10·log10(P_signal / P_{g·noise}) = snr_db.

    The noise is tiled or cropped to the signal length. Raises on silent inputs,
    where an SNR is undefined.
    """
    signal = np.asarray(signal, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.size == 0:
        raise ValueError("noise is empty")
    if noise.size < signal.size:
        noise = np.tile(noise, int(np.ceil(signal.size / noise.size)))
    noise = noise[: signal.size]
    p_sig, p_noise = np.mean(signal**2), np.mean(noise**2)
    if p_sig == 0.0 or p_noise == 0.0:
        raise ValueError("SNR is undefined for a silent signal or silent noise")
    gain = np.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (signal + gain * noise).astype(np.float32)
