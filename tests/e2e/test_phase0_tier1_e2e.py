"""End-to-end: `dvc repro tier1_compare` on a tiny override (embedded corpus; mel, random tiny Mimi and EnCodec)."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from audioprobe.runtime.headline import MAX_KEYS, SYNTHETIC_BANNER

TINY = {
    "data": {"librispeech": {"embedded": {"speakers": 12, "utterances": 3}}},
    "phase0": {
        "latents": {"batch_size": 4, "device": "cpu"},
        "tier1": {"lags": [1, 2], "hidden": 32, "epochs": 1.0, "eval_per_speaker": 50, "device": "cpu",
                  "injection": {"utterances": 4, "starts": 2, "steps": 4, "inject_every": 2}},
    },
}


@pytest.mark.slow
@pytest.mark.e2e
def test_tier1_models_injection_and_comparison(temp_repo):
    temp_repo.set_params(TINY)
    temp_repo.commit("tiny")
    proc = temp_repo.run("dvc", "repro", "phase0_tier1_compare")
    root = temp_repo.root
    assert "random-init" in proc.stderr + proc.stdout
    metrics = json.loads((root / "metrics/phase0_tier1.json").read_text())
    assert len(metrics) <= MAX_KEYS and all(k.startswith("phase0.tier1.") for k in metrics)
    for enc in ("mel", "mimi", "encodec"):
        for key in ("vmf_dnll_ctx_k1", "mdn_dnll_ctx_k1", "vmf_dnll_k1_vs_kmax", "mdn_dnll_k1_vs_kmax",
                    "vmf_cos_k1", "vmf_state_error_free_step4"):
            v = metrics[f"phase0.tier1.{enc}.{key}"]
            assert isinstance(v, float) and math.isfinite(v), (enc, key, v)
    assert metrics["phase0.tier1.weights.mimi"] == "random-init" == metrics["phase0.tier1.weights.encodec"]
    assert metrics["phase0.tier1.weights.mel"] == "none (mel)" and metrics["phase0.tier1.synthetic"] is True
    table = pl.read_csv(root / "plots/phase0/tier1_compare/comparison.csv")
    assert table.height == 3 * 2 * 2 * 2  # encoders × rates × models × k
    native = dict(zip(table.filter(pl.col("rate") == "native")["encoder"],
                      table.filter(pl.col("rate") == "native")["frame_rate"]))
    assert native == {"mel": 50.0, "mimi": 12.5, "encodec": 75.0}
    assert set(table.filter(pl.col("rate") == "common")["frame_rate"]) == {12.5}
    assert set(table["eval_speakers"]) == {"2/2"}  # every eval speaker in every row
    assert (table["epochs"] == 1.0).all()  # equal passes for every representation
    # every row is also read against the context-free model of its family (same capacity and passes)
    assert table["dnll_ctx_per_dim_mean"].is_finite().all() and table["ctxfree_nll_per_dim_mean"].is_finite().all()
    assert table["undertrained"].dtype == pl.Boolean
    # steps follow the sample count: 75 Hz has ~6x the steps of 12.5 Hz (same passes)
    enc = table.filter((pl.col("encoder") == "encodec") & (pl.col("family") == "vmf") & (pl.col("k") == 1))
    steps = dict(zip(enc["rate"], enc["steps"]))
    assert steps["native"] >= 4 * steps["common"]
    inj = pl.read_csv(root / "plots/phase0/tier1_injection/injection.csv")
    assert set(inj["mode"]) == {"A", "B", "C", "D"} and set(inj["injection_resets"]) == {"full_window"}
    assert inj.height == 2 * 3 * 2 * 4 * 4  # families × encoders × rates × modes × steps
    assert set(inj["rollouts"]) == {8}
    by_k = pl.read_csv(root / "plots/phase0/tier1_compare/by_k.csv")
    assert set(by_k["k"]) == {1, 2} and by_k["series"].n_unique() == 12
    report = (root / "plots/phase0/tier1_compare/report.txt").read_text()
    assert report.startswith(f"WARNING: {SYNTHETIC_BANNER}") and "random-init" in report
    assert "What the context adds (the headline)" in report
    ckpt = root / "data/phase0/tier1/vmf"
    assert (ckpt / "encodec_native_k1.safetensors").is_file() and (ckpt / "encodec_common_k2.json").is_file()
    assert not (ckpt / "mimi_common_k1.safetensors").exists()  # native = common: trained once
    # A re-run is a no-op; an MDN-only param reruns the MDN and what reads it, never the vMF
    temp_repo.commit("ran")
    assert "Running stage" not in temp_repo.run("dvc", "repro", "phase0_tier1_compare").stdout
    temp_repo.set_params({"phase0": {"tier1": {"mdn_components": 2}}})
    out = temp_repo.run("dvc", "repro", "phase0_tier1_compare").stdout
    assert "Running stage 'phase0_tier1_fit@mdn'" in out and "Running stage 'phase0_tier1_compare'" in out
    assert "Running stage 'phase0_tier1_fit@vmf'" not in out and "Running stage 'phase0_tier1_latents" not in out
