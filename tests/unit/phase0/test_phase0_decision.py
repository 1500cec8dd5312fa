"""The PASS/FAIL rule on hand-made metric tables: a pass, and each way to fail."""

from __future__ import annotations

import json

import pytest

from audioprobe.phase0.decision import DecisionRule, decide
from audioprobe.phase0.report import render_report

RULE = DecisionRule()


def table(**over) -> dict:
    """A lag-1 metrics table where mean_vq64 passes and pca8_vq256 fails on VR."""
    good = {
        "train.all.vr": 0.50, "eval.all.vr": 0.55, "eval.all.degradation": 0.10,
        "train.all.random_vr": 0.99, "eval.all.random_vr": 1.02,
        "train.high_energy.vr": 0.60, "eval.high_energy.vr": 0.62,
        "train.medial.vr": 0.52, "eval.medial.vr": 0.58,
        "train.all.excluded_flag": False, "eval.all.excluded_flag": False,
        "train.all.n_included": 5000, "eval.all.n_included": 1200,
        "train.all.excluded_mass": 0.01, "eval.all.excluded_mass": 0.02,
    }
    bad = {**good, "train.all.vr": 0.97, "eval.all.vr": 0.98, "eval.all.degradation": 0.01}
    m = {f"lag1.mean_vq64.{k}": v for k, v in good.items()}
    m.update({f"lag1.pca8_vq256.{k}": v for k, v in bad.items()})
    m.update({f"lag1.mean_vq64.{k}": v for k, v in over.items()})
    m.update({"latents.encoder": "mel", "latents.random_init": False, "lags": "1,2,4", "window": 8})
    return m


SCHEMES = ["mean_vq64", "pca8_vq256"]


def test_a_scheme_meeting_every_criterion_passes():
    d = decide(table(), SCHEMES, RULE)
    assert d["decision"] == "PASS" and d["pass"] is True and d["passing_schemes"] == "mean_vq64"
    assert d["mean_vq64.pass"] and not d["pca8_vq256.pass"] and not d["pca8_vq256.vr_train"]
    assert d["mean_vq64.vr_eval_value"] == 0.55
    assert all(isinstance(v, (int, float, str, bool)) for v in d.values())
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("over, failed", [
    ({"train.all.vr": 0.6}, "vr_train"),  # strict: VR < 0.6
    ({"eval.all.vr": 0.75}, "vr_eval"),
    ({"eval.all.degradation": 0.2}, "degradation"),
    ({"train.all.random_vr": 0.94}, "random_train"),
    ({"eval.all.random_vr": 1.06}, "random_eval"),
    ({"train.high_energy.vr": 0.66}, "high_energy_train"),
    ({"eval.high_energy.vr": 0.70}, "high_energy_eval"),
    ({"train.medial.vr": 0.651}, "medial_train"),
    ({"eval.medial.vr": 0.9}, "medial_eval"),
    ({"eval.all.excluded_flag": True}, "exclusion_eval"),
    ({"train.all.excluded_flag": True}, "exclusion_train"),
])
def test_each_criterion_alone_fails_the_decision(over, failed):
    d = decide(table(**over), SCHEMES, RULE)
    assert d["decision"] == "FAIL" and not d["mean_vq64.pass"]
    assert not d[f"mean_vq64.{failed}"]
    vrs = ("vr_train", "vr_eval", "degradation", "random_train", "random_eval", "high_energy_train",
           "high_energy_eval", "medial_train", "medial_eval")
    if failed.startswith("exclusion"):
        # a flagged scheme is excluded: its VRs are neither shown nor met (issue 21)
        assert all(d[f"mean_vq64.{c}_status"] == "excluded" and not d[f"mean_vq64.{c}"] for c in vrs)
        return
    assert sum(not d[f"mean_vq64.{c}"] for c in (*vrs, "exclusion_train", "exclusion_eval")) == 1


def test_an_all_excluded_scheme_never_passes():
    # every sample excluded: no VR keys at all (metrics JSON drops undefined values)
    m = table()
    for k in [k for k in m if k.startswith("lag1.mean_vq64.") and k.endswith((".vr", "random_vr", "degradation"))]:
        del m[k]
    m.update({"lag1.mean_vq64.train.all.n_included": 0, "lag1.mean_vq64.eval.all.n_included": 0,
              "lag1.mean_vq64.train.all.excluded_flag": True, "lag1.mean_vq64.eval.all.excluded_flag": True})
    assert decide(m, SCHEMES, RULE)["decision"] == "FAIL"
    # ...even with the origin's rule, which ignores the exclusion flag
    origin = DecisionRule(require_low_exclusion=False)
    d = decide(m, SCHEMES, origin)
    assert d["decision"] == "FAIL" and not d["mean_vq64.has_samples"] and not d["mean_vq64.vr_train"]
    assert "mean_vq64.exclusion_train" not in d


def test_origin_rule_ignores_the_exclusion_flag_and_missing_scheme_fails():
    d = decide(table(**{"eval.all.excluded_flag": True}), SCHEMES, DecisionRule(require_low_exclusion=False))
    assert d["decision"] == "PASS"
    assert decide(table(), ["pca8_quartile"], RULE)["decision"] == "FAIL"


def test_decision_lag_selects_the_keys():
    m = {k.replace("lag1.", "lag2."): v for k, v in table().items()}
    assert decide(m, SCHEMES, DecisionRule(lag=2))["decision"] == "PASS"
    assert decide(m, SCHEMES, DecisionRule(lag=1))["decision"] == "FAIL"


def summary(source: str = "path", weights: str = "kyutai/moshiko-pytorch-bf16") -> dict:
    """A phase0_metrics summary.json: 24 speakers, 6 of the 19 train speakers give held-out rows."""
    return {
        "latents": {"encoder": "mimi", "dim": 512, "frame_rate": 12.5, "random_init": weights == "random-init",
                    "weights": {"name": "mimi", "weights": weights, "sha256": "ab" * 32},
                    "data": {"source": source, "sha256": "cd" * 32}},
        "seed": 42, "window": 8, "lags": [1, 2, 4], "schemes": SCHEMES,
        "rows": {"train": 5150, "heldout": 708, "eval": 1430},
        "speakers": {"train": 19, "heldout": 6, "eval": 5, "total": 24, "heldout_also_in_train": 6,
                     "eval_also_in_train": 0},
        "settings": {"excluded_mass_flag": 0.1, "min_cluster_train_samples": 100},
    }


def test_report_shows_the_matrix_the_verdict_and_a_random_init_warning():
    m = table()
    d = decide(m, SCHEMES, RULE)
    text = render_report(m, d, SCHEMES, RULE, summary())
    assert "PASS at lag 1" in text and "0.550" in text and "WARNING" not in text
    assert "Proceed to Phase 1" in text
    text = render_report(m, decide(m, SCHEMES, RULE), SCHEMES, RULE, summary(weights="random-init"))
    assert "WARNING: the latents come from an encoder with RANDOM weights (random-init)" in text
    assert "Proceed to Phase 1" not in text
    failing = table(**{"eval.all.vr": 0.99})
    text = render_report(failing, decide(failing, SCHEMES, RULE), SCHEMES, RULE, summary())
    assert "FAIL at lag 1" in text and "VR 0.997" in text  # the origin's result is quoted
    assert "A negative result for these latents" in text
