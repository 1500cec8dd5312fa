"""kws summary across replicas: headline values, undefined statistics, detail tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from audioprobe.runtime.headline import MAX_KEYS, headline
from audioprobe.kws.summary import (
    NA,
    RunSummary,
    best_run,
    combined_checkpoint_sha256,
    comparison_rows,
    condition_rows,
    confusion_rows,
    headline_values,
    layer_rows,
    layer_run_rows,
    lif_gain,
    per_class_rows,
    run_rows,
    seed_reference_rows,
    threshold_rows,
)
from audioprobe.metrics.seed_stats import paired_ttest


def _run(condition, replica, test_acc, val_acc, entropies, best_epoch=3):
    layers = [{"fire_rate": 1.0 if condition == "base" else 0.9, "always_on": 1.0, "selective": 0.0,
               "entropy": e} for e in entropies]
    thresholds = []
    if condition == "lif":
        thresholds = [[0.01, 0.03]] * len(entropies)
        for layer in layers:
            layer.update(threshold_mean=0.02, threshold_std=0.01)
    result = {"test_acc": test_acc, "best_val_acc": val_acc, "best_epoch": best_epoch, "epochs": 10, "stop": "plateau",
              "torch_seed": 100 + replica, "test_loss": 0.5, "n_params": 1234,
              "checkpoint_sha256": f"{condition}{replica}".ljust(64, "0")}
    return RunSummary(condition, replica, result, layers, thresholds)


RUNS = [
    _run("base", 0, 0.80, 0.70, [0.0, 0.0, 0.0]),
    _run("base", 1, 0.82, 0.71, [0.0, 0.0, 0.0], best_epoch=7),
    _run("base", 2, 0.81, 0.69, [0.0, 0.0, 0.0]),
    _run("lif", 0, 0.83, 0.72, [0.11, 0.14, 0.10]),
    _run("lif", 1, 0.84, 0.75, [0.11, 0.14, 0.06]),
    _run("lif", 2, 0.82, 0.70, [0.10, 0.20, 0.30]),
]


def test_headline_values_hand_computed():
    v = headline_values(RUNS, chance_acc=1 / 35, n_test=350)
    json.dumps(v, allow_nan=False)
    assert v["base.test_acc.mean"] == pytest.approx(0.81)
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # std of [0.80, 0.82, 0.81] is 0.01
    assert v["base.test_acc.ci95_low"] == pytest.approx(0.81 - half)
    assert v["base.test_acc.ci95_high"] == pytest.approx(0.81 + half)
    diff = np.array([0.03, 0.02, 0.01])
    assert v["lif_gain.mean"] == pytest.approx(0.02)
    gain_half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
    assert v["lif_gain.ci95_low"] == pytest.approx(0.02 - gain_half)
    assert v["ttest.p"] == pytest.approx(stats.ttest_rel([0.83, 0.84, 0.82], [0.80, 0.82, 0.81]).pvalue)
    assert v["hierarchy"] == "none"  # lif mean entropy 0.107, 0.160, 0.153: up then down
    assert v["lif.entropy.peak_layer"] == 1 and v["lif.entropy.peak"] == pytest.approx(0.48 / 3)
    assert v["lif.fire_rate.mean"] == pytest.approx(0.9) and v["lif.threshold.mean"] == pytest.approx(0.02)
    assert v["replicas"] == 3 and v["best_epoch.max"] == 7 and v["epochs"] == 10
    assert v["runs_best_at_last_epoch"] == 0
    still_improving = [*RUNS[:-1], _run("lif", 2, 0.82, 0.70, [0.10, 0.20, 0.30], best_epoch=10)]
    assert headline_values(still_improving, chance_acc=1 / 35, n_test=350)["runs_best_at_last_epoch"] == 1
    assert v["n_test"] == 350


def test_headline_fits_the_convention():
    v = headline_values(RUNS, chance_acc=1 / 35, n_test=350)
    m = headline("kws", v, data={"speech_commands": {"source": "embedded", "sha256": "a" * 64}},
                 weights={"kws_net": {"source": "trained-here", "sha256": combined_checkpoint_sha256(RUNS)}})
    assert len(m) <= MAX_KEYS and all(k.startswith("kws.") for k in m)
    assert m["kws.data.speech_commands"] == "embedded@aaaaaaaaaaaa"
    assert m["kws.weights.kws_net"].startswith("trained-here@") and len(m["kws.weights.kws_net"]) == 25
    assert m["kws.synthetic"] is True


def test_single_replica_writes_na_and_keeps_every_key():
    v1 = headline_values([RUNS[0], RUNS[3]], chance_acc=0.5, n_test=2)
    v3 = headline_values(RUNS, chance_acc=0.5, n_test=2)
    assert v1.keys() == v3.keys()  # stable key set
    json.dumps(v1, allow_nan=False)
    for k in ("base.test_acc.ci95_low", "lif.test_acc.ci95_high", "lif_gain.mean", "lif_gain.ci95_low", "ttest.p"):
        assert v1[k] == NA, k
    row = comparison_rows([RUNS[0], RUNS[3]])[0]
    assert row["gain"] == NA and row["gain_ci95_low"] == NA and "comparison is undefined" in row["status"]
    assert row["n_pairs"] == 1


def test_constant_differences_give_na_not_a_huge_t():
    """Issue 8: base [28, 36, 42]/70, lif = base + 1/70 gave t = 7.7e14, p = 1.7e-30, 'ok'."""
    base = [28 / 70, 36 / 70, 42 / 70]
    lif = [b + 1 / 70 for b in base]
    diff = np.array(lif) - np.array(base)
    assert np.ptp(diff) > 0  # the float differences really are not all equal ...
    assert stats.ttest_rel(lif, base).pvalue < 1e-20  # ... and scipy reports absurd evidence
    out = paired_ttest(base, lif)
    assert out["status"].startswith("n/a") and out["p_value"] is None and out["t_stat"] is None
    runs = [_run("base", i, b, 0.5, [0.0]) for i, b in enumerate(base)]
    runs += [_run("lif", i, x, 0.5, [0.1]) for i, x in enumerate(lif)]
    gain = lif_gain(runs)
    assert gain["p"] == NA and gain["mean"] == NA and gain["ci95_low"] == NA
    assert "constant" in gain["status"]
    assert headline_values(runs, chance_acc=0.5, n_test=70)["ttest.p"] == NA


def test_real_differences_still_get_a_test():
    out = paired_ttest([0.40, 0.51, 0.60], [0.41, 0.53, 0.60])
    assert out["status"] == "ok" and 0.0 < out["p_value"] < 1.0


def test_comparison_row_always_carries_its_ci():
    row = comparison_rows(RUNS)[0]
    assert row["gain"] == pytest.approx(0.02) and row["gain_ci95_low"] < 0.02 < row["gain_ci95_high"]
    assert row["status"] == "ok" and row["n_pairs"] == 3 and row["hierarchy"] == "none"
    for r in (comparison_rows(RUNS)[0], comparison_rows([RUNS[0], RUNS[3]])[0]):
        has_gain = r["gain"] != NA
        assert has_gain == (r["gain_ci95_low"] != NA) == (r["gain_ci95_high"] != NA)


def test_seed_reference_is_separate_and_labelled():
    rows = seed_reference_rows()
    assert [r["row"] for r in rows] == ["Transformer / Text", "CfC / Text"]
    assert rows[0]["change_pct"] == -0.75 and rows[0]["lif_gain_pct"] == 0.75 and rows[1]["change_pct"] == -0.06
    assert all("reference only" in r["source"] for r in rows)
    assert all("Text" not in r["row"] for r in comparison_rows(RUNS))


def test_best_run_ties_keep_params_order():
    tied = [_run("base", 0, 0.5, 0.7, [0.0]), _run("lif", 0, 0.9, 0.7, [0.1])]
    assert best_run(tied).name == "base-0"
    assert best_run(RUNS).name == "lif-1"  # chosen on validation accuracy


def test_detail_tables():
    rows = layer_rows(RUNS)
    assert [(r["condition"], r["layer"]) for r in rows] == [("base", 0), ("base", 1), ("base", 2),
                                                           ("lif", 0), ("lif", 1), ("lif", 2)]
    assert rows[0]["entropy"] == 0.0 and rows[0]["fire_rate"] == 1.0  # written as numbers, charted
    assert rows[4]["entropy"] == pytest.approx((0.14 + 0.14 + 0.20) / 3)
    by_run = layer_run_rows(RUNS)
    assert len(by_run) == 18 and by_run[0]["threshold_mean"] == NA and by_run[9]["threshold_mean"] == 0.02
    assert by_run[15]["entropy_hierarchy"] == "increasing"  # lif-2: 0.10, 0.20, 0.30
    assert len(threshold_rows(RUNS)) == 3 * 3 * 2
    assert [r["run"] for r in run_rows(RUNS)] == ["base-0", "base-1", "base-2", "lif-0", "lif-1", "lif-2"]
    cond = condition_rows(RUNS)
    assert cond[0]["condition"] == "base" and cond[0]["n"] == 3 and cond[0]["mean"] == pytest.approx(0.81)


def test_confusion_is_square_over_every_class():
    words = ["a", "b", "c"]
    rows = confusion_rows(["a", "a", "b"], ["a", "b", "b"], words)
    assert len(rows) == 9 and {r["actual"] for r in rows} == {r["predicted"] for r in rows} == set(words)
    counts = {(r["actual"], r["predicted"]): r["count"] for r in rows}
    assert counts[("a", "a")] == 1 and counts[("a", "b")] == 1 and counts[("b", "b")] == 1
    assert counts[("c", "c")] == 0 and sum(counts.values()) == 3
    per = per_class_rows(["a", "a", "b"], ["a", "b", "b"], words)
    assert [r["accuracy"] for r in per] == [0.5, 1.0, NA]


def test_combined_checkpoint_hash_names_the_set():
    h = combined_checkpoint_sha256(RUNS)
    assert h == combined_checkpoint_sha256(list(reversed(RUNS))) and len(h) == 64
    other = RUNS[:-1] + [_run("lif", 2, 0.82, 0.70, [0.1, 0.2, 0.3])]
    other[-1].result["checkpoint_sha256"] = "f" * 64
    assert combined_checkpoint_sha256(other) != h


def test_accuracy_intervals_stay_in_their_bounds():
    """Near-perfect replicas (the real-data case of issue 21: a CI up to 1.064): CIs stop at 1.0 in every output."""
    runs = [_run("base", r, a, 0.9, [0.0, 0.0, 0.0]) for r, a in enumerate((0.96, 1.0, 1.0))]
    runs += [_run("lif", r, a, 0.9, [0.1, 0.2, 0.3]) for r, a in enumerate((0.90, 1.0, 1.0))]
    v = headline_values(runs, chance_acc=1 / 35, n_test=350)
    for cond in ("base", "lif"):
        assert 0.0 <= v[f"{cond}.test_acc.ci95_low"] < v[f"{cond}.test_acc.mean"] < v[f"{cond}.test_acc.ci95_high"] == 1.0
    rows = {r["condition"]: r for r in condition_rows(runs)}
    assert rows["lif"]["ci95_high"] == 1.0 and rows["lif"]["ci95_low"] == pytest.approx(v["lif.test_acc.ci95_low"])
    g = lif_gain(runs)  # diffs 0.06, 0, 0: a t interval reaching -0.19, inside [-1, 1]
    assert -1.0 <= g["ci95_low"] < g["mean"] < g["ci95_high"] <= 1.0


def test_kws_analyze_console_numbers_are_rounded():
    from stages.kws_analyze import _num

    assert _num(0.036666666666666667, "+.4f") == "+0.0367" and _num(0.0123456789, ".3g") == "0.0123"
    assert _num(NA, "+.4f") == "n/a"
