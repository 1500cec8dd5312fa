"""SNR mixing hits the requested SNR; polyphase resampling keeps length ratio and pitch."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.audio.mixing import mix_at_snr, rms
from audioprobe.audio.resample import resample


def _snr_db(signal: np.ndarray, mixed: np.ndarray) -> float:
    s = signal.astype(np.float64)
    n = mixed.astype(np.float64) - s
    return 10 * np.log10(np.mean(s**2) / np.mean(n**2))


@pytest.mark.parametrize("snr", [-10.0, 0.0, 7.5, 20.0, 40.0])
def test_mix_hits_requested_snr(snr):
    rng = np.random.default_rng(int(snr) + 100)
    signal = (0.2 * rng.standard_normal(16000)).astype(np.float32)
    noise = (rng.uniform(-1, 1, 23456) * rng.uniform(0.01, 3)).astype(np.float32)  # longer: cropped
    mixed = mix_at_snr(signal, noise, snr)
    assert mixed.dtype == np.float32 and mixed.shape == signal.shape
    assert abs(_snr_db(signal, mixed) - snr) < 1e-6
    # the added part is a scaled copy of the first len(signal) noise samples
    added = mixed.astype(np.float64) - signal
    assert np.corrcoef(added, noise[: signal.size])[0, 1] > 0.999999


def test_short_noise_is_tiled():
    rng = np.random.default_rng(1)
    signal = rng.standard_normal(1000).astype(np.float32)
    noise = rng.standard_normal(300).astype(np.float32)
    mixed = mix_at_snr(signal, noise, 3.0)
    added = mixed.astype(np.float64) - signal
    tiled = np.tile(noise, 4)[:1000].astype(np.float64)
    gain = added @ tiled / (tiled @ tiled)
    np.testing.assert_allclose(added, gain * tiled, atol=1e-6)
    assert abs(_snr_db(signal, mixed) - 3.0) < 1e-6


def test_silent_inputs_raise():
    x = np.ones(100, np.float32)
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(x, np.zeros(50, np.float32), 10.0)
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(np.zeros(100, np.float32), x, 10.0)
    with pytest.raises(ValueError, match="empty"):
        mix_at_snr(x, np.zeros(0, np.float32), 10.0)


def test_rms():
    assert rms(np.array([3.0, -3.0, 3.0, -3.0])) == pytest.approx(3.0)
    assert rms(np.zeros(5)) == 0.0


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spec.argmax()])


@pytest.mark.parametrize(("sr_in", "sr_out"), [(16000, 24000), (24000, 16000), (16000, 8000), (44100, 16000)])
def test_resample_length_ratio(sr_in, sr_out):
    x = np.random.default_rng(0).standard_normal(sr_in).astype(np.float32)  # 1 s
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and y.shape == (sr_out,)


def test_tone_keeps_its_pitch_16k_to_24k():
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = resample(x, 16000, 24000)
    assert y.size == 24000
    assert _peak_hz(x, 16000) == 440.0
    assert _peak_hz(y, 24000) == 440.0
    # amplitude survives (away from the edges)
    assert rms(y[2400:-2400]) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_resample_removes_content_above_new_nyquist():
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 6000 * t)  # above 4 kHz Nyquist of 8 kHz
    y = resample(x, 16000, 8000)
    assert rms(y[800:-800]) < 0.01  # filtered, not aliased to 2 kHz


def test_resample_identity_and_batch_axis():
    x = np.random.default_rng(2).standard_normal((3, 1600))  # (B, S)
    same = resample(x, 16000, 16000)
    assert same.dtype == np.float32 and np.array_equal(same, x.astype(np.float32))
    y = resample(x, 16000, 24000)
    assert y.shape == (3, 2400)
    np.testing.assert_allclose(y[1], resample(x[1], 16000, 24000), atol=1e-6)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)
