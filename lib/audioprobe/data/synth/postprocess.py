"""Turn raw eSpeak output into recorded-sounding clips: resample, trim, gain, noise floor."""

from __future__ import annotations

import numpy as np

from audioprobe.audio.resample import resample


def trim_silence(wave: np.ndarray, rel_threshold: float = 0.02) -> np.ndarray:
    """Drop leading/trailing samples quieter than rel_threshold · peak."""
    idx = np.flatnonzero(np.abs(wave) > rel_threshold * np.max(np.abs(wave)))
    return wave[idx[0] : idx[-1] + 1] if idx.size else wave


def finish(
    rng: np.random.Generator, wave: np.ndarray, sr_in: int, sr_out: int,
    gain_db: tuple[float, float] = (-24.0, -6.0), snr_db: tuple[float, float] = (20.0, 45.0),
) -> np.ndarray:
    """Resample to sr_out, trim, scale to a random peak level and add a pink-ish noise floor."""
    x = trim_silence(resample(wave, sr_in, sr_out))
    peak = np.max(np.abs(x)) or 1.0
    x = x / peak * 10 ** (rng.uniform(*gain_db) / 20)
    return add_floor(rng, x, snr_db)


def add_floor(rng: np.random.Generator, x: np.ndarray, snr_db: tuple[float, float]) -> np.ndarray:
    """Add low-passed noise at a random SNR (recordings are never digitally silent)."""
    noise = np.cumsum(rng.standard_normal(x.size)) * 0.02
    noise = noise - np.convolve(noise, np.ones(101) / 101, mode="same") + rng.standard_normal(x.size) * 0.5
    p_sig = np.mean(x**2) or 1e-8
    g = np.sqrt(p_sig / (np.mean(noise**2) * 10 ** (rng.uniform(*snr_db) / 10)))
    return (x + g * noise).astype(np.float32)


def place(rng: np.random.Generator, x: np.ndarray, length: int) -> np.ndarray:
    """Put x at a random offset inside `length` zeros (cropped if longer)."""
    x = x[:length]
    out = np.zeros(length, np.float32)
    start = int(rng.integers(0, length - x.size + 1))
    out[start : start + x.size] = x
    return out
