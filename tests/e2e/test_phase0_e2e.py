"""End-to-end: `dvc repro phase0_report` on tiny overrides (mel embedded, random tiny Mimi, real fixtures)."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from audioprobe.runtime.headline import MAX_KEYS, SYNTHETIC_BANNER

# Tiny but complete: every scheme, every lag, every split; small K so clusters reach the
# (lowered) effective-cluster count on a few thousand frames; n_init 2 keeps k-means fast.
TINY = {
    "phase0": {
        "latents": {"batch_size": 4, "device": "cpu"},
        "conditioning": {"mean_vq_k": 8, "pca_vq_k": 16, "pca_components": 4, "kmeans_n_init": 2},
        "metrics": {"min_cluster_train_samples": 20},
    },
}



def _check_outputs(root) -> tuple[dict, dict, str]:
    """Check the lane's outputs; return (headline metrics, summary.json, report text)."""
    metrics = json.loads((root / "metrics/phase0.json").read_text())
    # phase0_tier1.json (tier1_compare) may be a committed copy; phase0_report writes only phase0.json
    assert "phase0.json" in {p.name for p in (root / "metrics").glob("phase0*.json")}
    assert {p.name for p in (root / "metrics").glob("phase0*.json")} <= {"phase0.json", "phase0_tier1.json"}
    assert len(metrics) <= MAX_KEYS and all(k.startswith("phase0.") for k in metrics)
    for k, v in metrics.items():
        assert isinstance(v, (bool, int, float, str)), (k, v)
        assert not (isinstance(v, float) and not math.isfinite(v)), k
    for scheme in ("mean_vq64", "pca8_vq256", "pca8_quartile"):  # stable keys, excluded or not
        for key in ("eval_vr", "eval_vr_random", "excluded", "entropy_gain_nats"):
            assert f"phase0.{scheme}.{key}" in metrics
    summary = json.loads((root / "plots/phase0/metrics/summary.json").read_text())
    report = (root / "plots/phase0/report/report.txt").read_text()
    assert "Decision matrix" in report and metrics["phase0.decision"] in ("PASS", "FAIL")
    assert f"{metrics['phase0.decision']} at lag 1" in report
    for name in ("vr_by_slice", "cluster_sizes", "cluster_variance", "cluster_means_pca", "speaker_vr"):
        assert (root / f"plots/phase0/report/{name}.png").stat().st_size > 1000
    # the confidence curve is a Vega chart (dvc.yaml plots) over this table, not a PNG
    assert not (root / "plots/phase0/report/confidence_curve.png").exists()
    curve = pl.read_csv(root / "plots/phase0/report/confidence_curve.csv")
    assert set(curve["scheme"].unique()) == {"mean_vq64", "pca8_vq256", "pca8_quartile"}
    assert set(curve["estimate"].unique()) == {"around train cluster means", "cluster means re-estimated"}
    assert (curve["vr_max"] == 0.6).all()
    table = pl.read_csv(root / "plots/phase0/metrics/tables.csv")
    assert table.height == 3 * 3 * 3 * 3  # lags × schemes × splits × slices
    assert pl.read_csv(root / "plots/phase0/metrics/schemes.csv").height == 3 * 3
    decision = pl.read_csv(root / "plots/phase0/report/decision.csv")
    assert set(decision["scheme"].unique()) == {"mean_vq64", "pca8_vq256", "pca8_quartile"}
    cond = root / "data/phase0/conditioning"
    assert sorted(p.name for p in cond.iterdir()) == [
        "fit.json", "lag1.safetensors", "lag1_assignments.safetensors", "lag2.safetensors",
        "lag2_assignments.safetensors", "lag4.safetensors", "lag4_assignments.safetensors",
        "target_norm.safetensors"]
    assert "seconds" not in (cond / "fit.json").read_text()
    return metrics, summary, report


@pytest.mark.e2e
def test_phase0_on_the_embedded_corpus_with_mel(temp_repo):
    temp_repo.set_params({**TINY, "data": {"librispeech": {"embedded": {"speakers": 12, "utterances": 3}}}})
    temp_repo.commit("tiny")
    temp_repo.run("dvc", "repro", "phase0_report")
    metrics, summary, report = _check_outputs(temp_repo.root)
    assert summary["latents"]["encoder"] == "mel" and summary["latents"]["random_init"] is False
    assert metrics["phase0.weights.encoder"] == "none (mel)"
    assert metrics["phase0.data.librispeech"].startswith("embedded@") and metrics["phase0.synthetic"] is True
    # synthetic data: banner in the report, no "finding" (and no random-init warning)
    assert SYNTHETIC_BANNER in report and "RANDOM weights" not in report and "valid negative" not in report
    table = pl.read_csv(temp_repo.root / "plots/phase0/metrics/tables.csv")
    # the random control of the pipeline's own output sits at ~1
    for split in ("train", "eval"):
        row = table.filter((pl.col("lag") == 1) & (pl.col("scheme") == "mean_vq64") & (pl.col("split") == split)
                           & (pl.col("slice") == "all"))
        assert abs(row["random_vr"][0] - 1.0) <= 0.05
    k = pl.read_csv(temp_repo.root / "plots/phase0/metrics/schemes.csv").filter(pl.col("lag") == 1)
    assert dict(zip(k["scheme"], k["k"], strict=True)) == {"mean_vq64": 8, "pca8_vq256": 16, "pca8_quartile": 256}
    # Re-running changes nothing; a decision threshold reruns the report only.
    temp_repo.commit("ran")
    assert "Running stage" not in temp_repo.run("dvc", "repro", "phase0_report").stdout
    temp_repo.set_params({"phase0": {"decision": {"vr_max": 0.99}}})
    out = temp_repo.run("dvc", "repro", "phase0_report").stdout
    assert "Running stage 'phase0_report'" in out and "Running stage 'phase0_metrics'" not in out


@pytest.mark.slow
@pytest.mark.e2e
def test_phase0_with_a_random_tiny_mimi_warns_and_records_random_init(temp_repo):
    temp_repo.set_params({
        **TINY,
        "data": {"librispeech": {"embedded": {"speakers": 12, "utterances": 3}}},
    })
    temp_repo.set_params({"phase0": {"encoder": {"name": "mimi", "weights": "random-init", "mimi_size": "tiny"}}})
    temp_repo.commit("tiny mimi")
    proc = temp_repo.run("dvc", "repro", "phase0_report")
    metrics, summary, report = _check_outputs(temp_repo.root)
    assert summary["latents"]["encoder"] == "mimi" and summary["latents"]["weights"]["weights"] == "random-init"
    assert metrics["phase0.weights.encoder"] == "random-init"
    assert "WARNING: the latents come from an encoder with RANDOM weights (random-init)" in report
    assert "RANDOM weights" in proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_phase0_on_real_librispeech_fixtures(temp_repo, fixtures_dir):
    temp_repo.set_params({
        **TINY,
        "data": {"librispeech": {"source": "path", "path": str(fixtures_dir / "LibriSpeech")}},
    })
    temp_repo.set_params({"phase0": {"latents": {"subset": "all"}}})
    temp_repo.commit("fixtures")
    temp_repo.run("dvc", "repro", "phase0_report")
    metrics, summary, report = _check_outputs(temp_repo.root)
    assert metrics["phase0.data.librispeech"].startswith("path@") and metrics["phase0.synthetic"] is False
    assert SYNTHETIC_BANNER not in report
    index = pl.read_parquet(temp_repo.root / "data/phase0/latents/index.parquet")
    assert set(index["subset"].unique()) == {"test-clean", "test-other", "train-clean-100"}
    frames = pl.read_parquet(temp_repo.root / "data/phase0/phase0_frames.parquet")
    assert frames["speaker_id"].n_unique() >= 85  # ~90 real speakers, every one with frames
    assert summary["speakers"]["eval"] >= 15  # the spec's 51/251 share of the real speakers
    assert summary["rows"]["eval"] > 0 and summary["rows"]["heldout"] > 0
    # With a few utterances per real speaker, some held-out speakers have every utterance
    # held out (none left in train): the report must not call them "the same speakers".
    spk = summary["speakers"]
    both, held = spk["heldout_also_in_train"], spk["heldout"]
    assert 0 < both <= held and spk["total"] == spk["train"] + spk["eval"] + held - both
    label = "heldout VR (same speakers)" if both == held else f"heldout VR ({both} of {held} spk in train)"
    assert label in report
    table = pl.read_csv(temp_repo.root / "plots/phase0/metrics/tables.csv").filter(
        (pl.col("lag") == 1) & (pl.col("scheme") == "mean_vq64") & (pl.col("split") == "train")
        & (pl.col("slice") == "all"))
    assert abs(table["random_vr"][0] - 1.0) <= 0.05
