"""Embedded ESC-50 animal classes (targets 0-9): official ids, deterministic, pitched calls, order kept."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.data.synth import esc50 as s_esc50
from audioprobe.data.synth import sounds

SR = 16000
OFFICIAL = {"dog": 0, "rooster": 1, "pig": 2, "cow": 3, "frog": 4, "cat": 5, "hen": 6, "insects": 7,
            "sheep": 8, "crow": 9}


def _periodicity(x: np.ndarray) -> float:
    """Peak normalised autocorrelation at lags of 1-16 ms (pitch 60-1000 Hz) over the loudest 100 ms frames."""
    frame = 1600
    n = x.size // frame
    frames = x[: n * frame].reshape(n, frame)  # [frames, samples]
    loud = frames[np.argsort((frames**2).sum(1))[-5:]]
    best = []
    for f in loud:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[frame - 1 :]
        best.append(ac[16:256].max() / (ac[0] + 1e-12))
    return float(np.mean(best))


def test_animals_have_their_official_targets_and_come_last():
    for name, target in OFFICIAL.items():
        assert sounds.ESC50_CLASSES[name][0] == target
    assert sounds.ESC50_ORDER[-10:] == list(sounds.ANIMALS)
    assert set(s_esc50.classes(28)) >= set(OFFICIAL)
    assert s_esc50.classes(18) == sounds.ESC50_ORDER[:18]  # the earlier corpora are unchanged


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_animal_call_is_deterministic_pitched_and_bounded(name):
    gen = sounds.ESC50_CLASSES[name][1]
    a = gen(np.random.default_rng([0, 1]), 3.0, SR)
    b = gen(np.random.default_rng([0, 1]), 3.0, SR)
    assert np.array_equal(a, b) and a.dtype == np.float32 and a.size == 3 * SR
    assert np.isfinite(a).all() and np.abs(a).max() <= 0.9 + 1e-6
    noise = sounds.white(np.random.default_rng(0), 3.0, SR)
    assert _periodicity(a) > 0.3 > _periodicity(noise)
