"""log_mel against a direct numpy computation; filterbank and tone sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioprobe.audio.mel import hz_to_mel, log_mel, mel_filterbank, mel_to_hz

SR, N_FFT, HOP, N_MELS = 16000, 400, 160, 80


def ref_filterbank(n_fft: int, n_mels: int, sr: int) -> np.ndarray:
    """HTK triangles written out from the definition, one filter and one bin at a time: (n_freqs, n_mels)."""
    mel_max = 2595.0 * np.log10(1.0 + (sr / 2) / 700.0)
    edges_hz = [700.0 * (10 ** (mel_max * i / (n_mels + 1) / 2595.0) - 1.0) for i in range(n_mels + 2)]
    n_freqs = n_fft // 2 + 1
    fb = np.zeros((n_freqs, n_mels))
    for m in range(n_mels):
        lo, centre, hi = edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]
        for k in range(n_freqs):
            f = k * sr / n_fft
            if lo <= f <= centre:
                fb[k, m] = (f - lo) / (centre - lo)
            elif centre < f <= hi:
                fb[k, m] = (hi - f) / (hi - centre)
    return fb


def ref_log_mel(x: np.ndarray, sr: int, n_mels: int, n_fft: int, hop: int) -> np.ndarray:
    """Explicit framing of a reflect-padded signal, periodic Hann, rfft power, filterbank, log."""
    pad = n_fft // 2
    xp = np.pad(x.astype(np.float64), (pad, pad), mode="reflect")
    n_frames = 1 + (xp.size - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
    frames = np.stack([xp[i * hop : i * hop + n_fft] * window for i in range(n_frames)])  # (frames, n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # (frames, n_freqs)
    return np.log(power @ ref_filterbank(n_fft, n_mels, sr) + 1e-9)


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return 0.1 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)


def test_filterbank_matches_definition():
    fb = mel_filterbank(N_FFT // 2 + 1, N_MELS, SR).numpy()
    assert fb.shape == (201, 80) and fb.dtype == np.float32
    np.testing.assert_allclose(fb, ref_filterbank(N_FFT, N_MELS, SR), atol=1e-6)


def test_filterbank_shape_and_partition_of_unity():
    fb = mel_filterbank(N_FFT // 2 + 1, N_MELS, SR).numpy().astype(np.float64)
    assert (fb >= 0).all() and fb.max() <= 1.0
    assert (fb.sum(axis=0) > 0).all()  # no empty filter at these settings
    # between the first and the last centre, neighbouring triangles sum to exactly 1
    centres = mel_to_hz(np.linspace(0, hz_to_mel(SR / 2), N_MELS + 2))[1:-1]
    freqs = np.arange(N_FFT // 2 + 1) * SR / N_FFT
    inside = (freqs >= centres[0]) & (freqs <= centres[-1])
    np.testing.assert_allclose(fb.sum(axis=1)[inside], 1.0, atol=1e-6)
    assert fb.sum(axis=1)[~inside].max() < 1.0
    # filters are ordered: each one peaks at or above its predecessor's peak bin
    assert (np.diff(fb.argmax(axis=0)) >= 0).all()
    assert np.allclose(mel_to_hz(hz_to_mel(np.array([0.0, 700.0, 8000.0]))), [0.0, 700.0, 8000.0])
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * np.log10(2.0))


def test_filterbank_rejects_bad_range():
    with pytest.raises(ValueError):
        mel_filterbank(201, 80, SR, f_min=0.0, f_max=9000.0)
    with pytest.raises(ValueError):
        mel_filterbank(201, 80, SR, f_min=500.0, f_max=400.0)


def test_log_mel_matches_reference_float64():
    x = _signal(SR)
    ours = log_mel(torch.from_numpy(x), SR, N_MELS, N_FFT, HOP).numpy()
    ref = ref_log_mel(x, SR, N_MELS, N_FFT, HOP)
    assert ours.shape == ref.shape == (101, 80)
    np.testing.assert_allclose(np.exp(ours), np.exp(ref), rtol=1e-4)


def test_log_mel_matches_reference_float32_and_other_settings():
    x = _signal(12345, seed=1)
    ours = log_mel(torch.from_numpy(x.astype(np.float32)), 22050, n_mels=40, n_fft=512, hop=128).numpy()
    ref = ref_log_mel(x.astype(np.float32), 22050, 40, 512, 128)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (1 + 12345 // 128, 40)
    np.testing.assert_allclose(np.exp(ours), np.exp(ref), rtol=1e-3)


def test_frame_count_and_batch_shape():
    x = torch.from_numpy(np.stack([_signal(SR, s) for s in range(6)])).reshape(2, 3, SR)  # (2, 3, S)
    out = log_mel(x, SR)
    assert out.shape == (2, 3, 101, 80)
    single = log_mel(x[1, 2], SR)
    torch.testing.assert_close(out[1, 2], single)
    assert log_mel(torch.zeros(SR + 159), SR).shape == (101, 80)
    assert log_mel(torch.zeros(SR + 160), SR).shape == (102, 80)
    assert torch.allclose(log_mel(torch.zeros(SR), SR), torch.tensor(np.log(1e-9), dtype=torch.float32))


@pytest.mark.parametrize("freq", [200.0, 440.0, 1000.0, 2500.0, 6000.0])
def test_pure_tone_peaks_in_its_mel_bin(freq):
    t = np.arange(SR) / SR
    x = torch.from_numpy(0.5 * np.sin(2 * np.pi * freq * t))
    energy = log_mel(x, SR).mean(dim=0).numpy()  # (n_mels,)
    # the bin whose triangle weighs `freq` the most, from the definition
    edges = mel_to_hz(np.linspace(0, hz_to_mel(SR / 2), N_MELS + 2))
    weights = np.maximum(0, np.minimum((freq - edges[:-2]) / (edges[1:-1] - edges[:-2]),
                                       (edges[2:] - freq) / (edges[2:] - edges[1:-1])))
    assert int(energy.argmax()) == int(weights.argmax())
    assert edges[energy.argmax()] < freq < edges[energy.argmax() + 2]
