"""Log-mel spectrogram from torch.stft and an HTK mel filterbank (torchaudio-compatible)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595·log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of hz_to_mel."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def _filterbank_np(n_freqs: int, n_mels: int, sr: int, f_min: float, f_max: float) -> np.ndarray:
    all_freqs = np.linspace(0.0, sr / 2.0, n_freqs)
    m_pts = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = np.diff(f_pts)  # (n_mels + 1,)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))  # (n_freqs, n_mels)
    fb.setflags(write=False)
    return fb


def mel_filterbank(
    n_freqs: int, n_mels: int, sr: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Return triangular HTK filters as a float32 tensor (n_freqs, n_mels), no norm.

    Same construction as torchaudio.functional.melscale_fbanks(norm=None, mel_scale="htk").
    """
    f_max = sr / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= sr / 2.0:
        raise ValueError(f"need 0 <= f_min < f_max <= sr/2, got f_min={f_min} f_max={f_max} sr={sr}")
    return torch.from_numpy(_filterbank_np(n_freqs, n_mels, sr, float(f_min), f_max).astype(np.float32))


def log_mel(
    wave: torch.Tensor,
    sr: int,
    n_mels: int = 80,
    n_fft: int = 400,
    hop: int = 160,
    eps: float = 1e-9,
) -> torch.Tensor:
    """Return log(mel power + eps) of `wave` [..., samples] as [..., frames, n_mels].

    Power spectrogram of a periodic Hann window (win = n_fft), centred frames with
    reflect padding: frames = 1 + samples // hop (101 for 1 s at 16 kHz, hop 160).
    """
    window = torch.hann_window(n_fft, dtype=wave.dtype, device=wave.device)
    lead = wave.shape[:-1]
    flat = wave.reshape(-1, wave.shape[-1])  # (B, S)
    spec = torch.stft(
        flat, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=window,
        center=True, pad_mode="reflect", return_complex=True,
    )  # (B, n_fft//2+1, frames)
    power = spec.real.square() + spec.imag.square()
    fb = mel_filterbank(n_fft // 2 + 1, n_mels, sr).to(power)
    mel = torch.matmul(power.transpose(-1, -2), fb)  # (B, frames, n_mels)
    return torch.log(mel + eps).reshape(*lead, mel.shape[-2], n_mels)
