"""detect baselines: every detector starts each clip from a clean state; scores in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audioprobe.detect.params import DetectBaselines
from audioprobe.detect.vad import BASELINES, Timer, make, score_clips

SR = 16000


def _clips():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    voiced = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 10)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    a = (0.6 * voiced / np.abs(voiced).max()).astype(np.float32)
    b = (0.05 * rng.standard_normal(SR // 2)).astype(np.float32)
    return a, b


@pytest.fixture(scope="module")
def silero():
    return make("silero", DetectBaselines())


def test_silero_scores_a_clip_the_same_after_another_clip(silero):
    a, b = _clips()
    alone = silero.score(b, Timer())
    silero.score(a, Timer())
    after = silero.score(b, Timer())
    assert after == alone


def test_silero_without_a_reset_would_carry_state_over(silero):
    """The check above can fail: the raw model, not reset between clips, scores b differently."""
    import torch

    a, b = _clips()
    m = silero.model

    def raw(x, reset):
        if reset:
            m.reset_states()
        with torch.no_grad():
            return [float(m(c, SR)) for c in torch.from_numpy(x[: x.size // 512 * 512]).reshape(-1, 1, 512)]

    alone = raw(b, reset=True)
    raw(a, reset=True)
    carried = raw(b, reset=False)
    assert not np.allclose(alone, carried)


def test_silero_provenance_is_the_wheel_file(silero):
    p = silero.provenance()
    assert p["source"].startswith("silero-vad-") and p["source"].endswith("silero_vad.jit") and len(p["sha256"]) == 64


@pytest.mark.parametrize("name", BASELINES)
def test_scores_are_in_unit_range_and_timed(name, tmp_path):
    a, b = _clips()
    for i, x in enumerate((a, b, a[:3200])):
        sf.write(tmp_path / f"{i}.wav", x, SR)
    scorer = make(name, DetectBaselines())
    scores, lat = score_clips(scorer, tmp_path, ["0.wav", "1.wav", "2.wav", "0.wav"], [1000, 500, 200, 1000])
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == scores[3]  # the same clip scored twice, other clips in between
    assert set(lat[0]) == {"load_ms", "features_ms", "model_ms", "post_ms"}
    if name == "energy":
        assert scores[0] > scores[1]  # modulated voice vs stationary noise
    if name == "silero":
        assert scores[0] > scores[1]
