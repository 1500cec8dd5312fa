"""bench.phase0 runs end to end on a few real-fixture utterances and ends with one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_bench_prints_parts_convergence_and_reference_ratio(tmp_path):
    # Without ../shared/fixtures the bench falls back to synthetic frames and says so: still a run.
    cmd = [sys.executable, "-m", "audioprobe.bench.phase0", "--frames", "6000", "--dim", "96", "--lags", "1",
           "--fixture-utterances", "20", "--reference"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["frames"] >= 6000 and summary["dim"] == 96 and summary["lags"] == [1]
    for part in ("mean_vq64", "pca8_vq256", "pca", "assign", "stats", "vr", "entropy"):
        assert summary[f"{part}_seconds"] >= 0
    assert summary["peak_rss_mb"] > 0 and summary["reference_seconds"] > 0 and summary["speedup"] > 0
    assert any("k-means convergence" in ln and "iterations" in ln for ln in lines)


def test_tiled_frames_keep_a_real_corpus_speaker_count():
    # 1 M tiled frames of the 87-speaker fixture were ~4 000 speakers (16x train-clean-100's 251), and the
    # per-speaker statistics cost in proportion: the cap keeps the count a real corpus has.
    import numpy as np

    from audioprobe.bench.phase0 import RealFrames, tile

    rng = np.random.default_rng(0)
    lengths = np.full(10, 20)
    real = RealFrames(rng.standard_normal((200, 4)).astype(np.float32), np.concatenate([[0], np.cumsum(lengths)]),
                      np.arange(10) % 5, np.ones(200, np.float32), 0.01)
    assert np.unique(tile(real, 2000, 4, speakers=0).utt_speaker).size == 50  # a new set per copy
    capped = tile(real, 2000, 4, speakers=7)
    assert capped.x.shape[0] == 2000 and np.unique(capped.utt_speaker).size == 7
    assert np.unique(tile(real, 2000, 4, speakers=3).utt_speaker).size == 5  # never below the real count
