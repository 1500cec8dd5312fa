"""End-to-end: `dvc repro phase0_report` on tiny overrides (mel embedded, random tiny Mimi, real fixtures)."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

# Tiny but complete: every scheme, every lag, every split; small K so clusters reach the
# (lowered) effective-cluster count on a few thousand frames; n_init 2 keeps k-means fast.
TINY = {
    "phase0": {
        "latents": {"batch_size": 4, "device": "cpu"},
        "conditioning": {"mean_vq_k": 8, "pca_vq_k": 16, "pca_components": 4, "kmeans_n_init": 2},
        "metrics": {"min_cluster_train_samples": 20},
    },
}


def _single_thread(repo) -> None:
    # k-means' OpenMP threads crawl when the test box is oversubscribed; one is plenty here.
    repo.env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})


def _check_outputs(root) -> tuple[dict, dict, str]:
    metrics = json.loads((root / "metrics/phase0.json").read_text())
    decision = json.loads((root / "metrics/phase0_decision.json").read_text())
    for blob in (metrics, decision):
        for k, v in blob.items():
            assert isinstance(v, (bool, int, float, str)), (k, v)
            assert not (isinstance(v, float) and not math.isfinite(v)), k
    report = (root / "plots/phase0/report.txt").read_text()
    assert "Decision matrix" in report and decision["decision"] in ("PASS", "FAIL")
    assert f"{decision['decision']} at lag 1" in report
    for name in ("cluster_sizes", "cluster_variance", "cluster_means_pca", "confidence_curve", "speaker_vr"):
        assert (root / f"plots/phase0/{name}.png").stat().st_size > 1000
    table = pl.read_csv(root / "plots/phase0/tables.csv")
    assert table.height == 3 * 3 * 3 * 3  # lags × schemes × splits × slices
    curve = pl.read_csv(root / "plots/phase0/confidence_curve.csv")
    assert curve["keep_pct"].to_list()[-1] == 100.0
    cond = root / "data/phase0/conditioning"
    assert sorted(p.name for p in cond.iterdir()) == [
        "fit.json", "lag1.safetensors", "lag1_assignments.safetensors", "lag2.safetensors",
        "lag2_assignments.safetensors", "lag4.safetensors", "lag4_assignments.safetensors",
        "target_norm.safetensors"]
    for scheme in ("mean_vq64", "pca8_vq256", "pca8_quartile"):
        for split in ("train", "heldout", "eval"):
            assert f"lag1.{scheme}.{split}.all.excluded_mass" in metrics
    return metrics, decision, report


@pytest.mark.e2e
def test_phase0_on_the_embedded_corpus_with_mel(temp_repo):
    _single_thread(temp_repo)
    temp_repo.set_params({**TINY, "data": {"librispeech": {"embedded": {"speakers": 12, "utterances": 3}}}})
    temp_repo.commit("tiny")
    temp_repo.run("dvc", "repro", "phase0_report")
    metrics, decision, report = _check_outputs(temp_repo.root)
    assert metrics["latents.encoder"] == "mel" and metrics["latents.random_init"] is False
    assert metrics["latents.data.source"] == "embedded" and len(metrics["latents.data.sha256"]) == 64
    assert "WARNING" not in report and decision["random_init"] is False
    # the random control of the pipeline's own output sits at ~1
    for split in ("train", "eval"):
        assert abs(metrics[f"lag1.mean_vq64.{split}.all.random_vr"] - 1.0) <= 0.05
    assert metrics["lag1.mean_vq64.k"] == 8 and metrics["lag1.pca8_quartile.k"] == 256
    # Re-running changes nothing; a decision threshold reruns the report only.
    temp_repo.commit("ran")
    assert "Running stage" not in temp_repo.run("dvc", "repro", "phase0_report").stdout
    temp_repo.set_params({"phase0": {"decision": {"vr_max": 0.99}}})
    out = temp_repo.run("dvc", "repro", "phase0_report").stdout
    assert "Running stage 'phase0_report'" in out and "Running stage 'phase0_metrics'" not in out


@pytest.mark.e2e
def test_phase0_with_a_random_tiny_mimi_warns_and_records_random_init(temp_repo):
    _single_thread(temp_repo)
    temp_repo.set_params({
        **TINY,
        "data": {"librispeech": {"embedded": {"speakers": 12, "utterances": 3}}},
    })
    temp_repo.set_params({"phase0": {"encoder": {"name": "mimi", "weights": "random-init", "mimi_size": "tiny"}}})
    temp_repo.commit("tiny mimi")
    proc = temp_repo.run("dvc", "repro", "phase0_report")
    metrics, decision, report = _check_outputs(temp_repo.root)
    assert metrics["latents.encoder"] == "mimi" and metrics["latents.provenance.weights"] == "random-init"
    assert metrics["latents.random_init"] is True and decision["random_init"] is True
    assert decision["weights"] == "random-init"
    assert "WARNING: the latents come from an encoder with RANDOM weights (random-init)" in report
    assert "RANDOM-INIT" in proc.stderr + proc.stdout


@pytest.mark.e2e
def test_phase0_on_real_librispeech_fixtures(temp_repo, fixtures_dir):
    _single_thread(temp_repo)
    temp_repo.set_params({
        **TINY,
        "data": {"librispeech": {"source": "path", "path": str(fixtures_dir / "LibriSpeech")}},
    })
    temp_repo.set_params({"phase0": {"latents": {"subset": "all"}}})
    temp_repo.commit("fixtures")
    temp_repo.run("dvc", "repro", "phase0_report")
    metrics, decision, _ = _check_outputs(temp_repo.root)
    assert metrics["latents.data.source"] == "path"
    index = pl.read_parquet(temp_repo.root / "data/phase0/latents_index.parquet")
    assert set(index["subset"].unique()) == {"test-clean", "test-other", "train-clean-100"}
    frames = pl.read_parquet(temp_repo.root / "data/phase0/phase0_frames.parquet")
    assert frames["speaker_id"].n_unique() >= 85  # ~90 real speakers, every one with frames
    assert metrics["speakers.eval"] >= 15  # the spec's 51/251 share of the real speakers
    assert metrics["rows.eval"] > 0 and metrics["rows.heldout"] > 0
    assert abs(metrics["lag1.mean_vq64.train.all.random_vr"] - 1.0) <= 0.05
