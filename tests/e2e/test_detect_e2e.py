"""End-to-end: `dvc repro detect_eval` on a tiny embedded override, and on the real fixtures through `path`."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

TINY_DETECT = {
    "detect": {
        "dataset": {"durations_ms": [200, 500], "snrs_db": [-5.0, 5.0, 20.0], "clips_per_cell": 10, "oversample": 4.0,
                    "min_files_per_cell": 1, "colour_files": 2},
        # a tiny corpus has one or two speakers per split: more candidates, a gentler speech rule
        "hygiene": {"speech_min_active": 0.6},
        "eval": {"bootstrap": 20},
        # the audio-LLM rows (tests/e2e/test_detect_llm_e2e.py covers them) at their smallest
        "llm": {"pretrain": {"steps": 20}, "finetune": {"epochs": 1, "eval_every": 3, "warmup_steps": 2, "batch_size": 8, "grad_accum": 1},
                "opro": {"iterations": 1, "candidates": 2}, "scoring": {"batch_size": 16}},
    },
}
TINY_DATA = {
    "data": {
        "speech_commands": {"embedded": {"speakers": 8, "words": 4, "noise_seconds": 5.0}},
        "librispeech": {"embedded": {"speakers": 6, "utterances": 2, "min_seconds": 2.0, "max_seconds": 4.0}},
        "esc50": {"embedded": {"classes": 28, "clips_per_fold": 1}},
        "musan": {"embedded": {"music": 5, "noise": 5, "speech": 1, "seconds": 3.0}},
    },
}
SYSTEMS = ("webrtc", "silero", "energy")


def _check(root, synthetic: bool) -> dict:
    metrics = json.loads((root / "metrics/detect.json").read_text())
    assert len(metrics) <= 24 and all(k.startswith("detect.") for k in metrics)
    assert metrics["detect.synthetic"] is synthetic
    for s in SYSTEMS:
        ba = metrics[f"detect.{s}.bal_acc"]
        assert isinstance(ba, float) and 0.0 <= ba <= 1.0
        dt = metrics[f"detect.{s}.dt75_snr_db"]
        assert isinstance(dt, float) or dt in ("censored-low", "censored-high", "no-rise", "n/a")
    assert metrics["detect.weights.silero"].startswith("silero-vad-")
    for k in ("esc50", "librispeech", "musan", "speech_commands"):
        assert f"detect.data.{k}" in metrics
    table = pl.read_csv(root / "plots/detect/eval/metrics.csv")
    assert set(SYSTEMS) <= set(table["system"])
    assert set(table["slice"]) == {"all", "snr_db", "duration_ms", "nonspeech_type"}
    for name in ("psychometric", "reliability", "confusion", "error_heatmap"):
        assert (root / f"plots/detect/eval/{name}.png").stat().st_size > 5000
    counts = pl.read_csv(root / "plots/detect/hygiene/counts.csv")
    assert counts["total"].min() == counts["total"].max()  # every cell holds its quota
    systems = pl.read_csv(root / "plots/detect/eval/systems.csv")
    assert systems.filter(pl.col("system") == "webrtc")["source"][0] == "no weights"
    # timings live only in the gitignored host folder
    assert (root / "plots/detect/host/latency.csv").is_file()
    for f in (root / "plots/detect").glob("*.csv"):
        assert "latency" not in f.read_text().splitlines()[0] if f.stat().st_size else True
    return metrics



@pytest.mark.slow
@pytest.mark.e2e
def test_detect_lane_on_a_tiny_embedded_override(temp_repo):
    temp_repo.set_params({**TINY_DATA, **TINY_DETECT})
    temp_repo.commit("tiny")
    temp_repo.run("dvc", "repro", "detect_eval")
    _check(temp_repo.root, synthetic=True)
    assert "WARNING: synthetic data" not in (temp_repo.root / "metrics/detect.json").read_text()
    temp_repo.commit("ran")
    assert "Running stage" not in temp_repo.run("dvc", "repro", "detect_eval").stdout
    # an eval param reruns only the evaluation
    temp_repo.set_params({"detect": {"eval": {"ece_bins": 5}}})
    out = temp_repo.run("dvc", "repro", "detect_eval").stdout
    assert "Running stage 'detect_eval'" in out and "Running stage 'detect_baselines'" not in out
    # a bad param fails with one line naming the key and leaves the last good outputs
    before = (temp_repo.root / "metrics/detect.json").read_text()
    temp_repo.set_params({"detect": {"eval": {"systems": ["webrtc", "nosuch"]}}})
    bad = temp_repo.run("dvc", "repro", "detect_eval", check=False)
    assert bad.returncode != 0 and "data/detect/scores/nosuch" in bad.stderr
    assert (temp_repo.root / "metrics/detect.json").read_text() == before


@pytest.mark.slow
@pytest.mark.e2e
def test_detect_lane_on_the_real_fixtures(temp_repo, fixtures_dir):
    for sub in ("speech_commands", "LibriSpeech", "ESC-50"):
        if not (fixtures_dir / sub).is_dir():
            pytest.skip(f"fixture folder {sub} missing")
    temp_repo.set_params({
        "data": {
            "speech_commands": {"source": "path", "path": str(fixtures_dir / "speech_commands")},
            "librispeech": {"source": "path", "path": str(fixtures_dir / "LibriSpeech")},
            "esc50": {"source": "path", "path": str(fixtures_dir / "ESC-50")},
            # the MUSAN fixture folder is not in the MUSAN layout (flac, no category/source folders)
            "musan": TINY_DATA["data"]["musan"],
        },
        **TINY_DETECT,
    })
    temp_repo.commit("fixtures")
    temp_repo.run("dvc", "repro", "detect_eval")
    metrics = _check(temp_repo.root, synthetic=True)  # MUSAN stays embedded
    assert metrics["detect.data.speech_commands"].startswith("path@")
    clips = pl.read_parquet(temp_repo.root / "data/detect/hygiene/clips.parquet")
    assert {"librispeech", "speech_commands", "esc50"} <= set(clips["source_dataset"])
    assert not math.isnan(pl.read_csv(temp_repo.root / "plots/detect/eval/metrics.csv")["bal_acc"][0])
