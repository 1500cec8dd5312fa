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
