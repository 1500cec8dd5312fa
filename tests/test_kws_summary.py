"""kws summary across replicas: flat metrics, undefined statistics, comparison table."""

from __future__ import annotations

import json
import math

import numpy as np

import pytest
from scipy import stats

from audioprobe.metrics.kws_summary import (
    RunSummary,
    best_run,
    comparison_rows,
    curve_rows,
    kws_metrics,
    layer_rows,
    threshold_rows,
)


def _run(condition, replica, test_acc, val_acc, entropies):
    layers = [{"fire_rate": 1.0 if condition == "base" else 0.9, "always_on": 1.0, "selective": 0.0,
               "entropy": e} for e in entropies]
    thresholds = []
    if condition == "lif":
        thresholds = [[0.01, 0.03]] * len(entropies)
        for layer in layers:
            layer.update(threshold_mean=0.02, threshold_std=0.01)
    result = {"test_acc": test_acc, "best_val_acc": val_acc, "best_epoch": 3, "torch_seed": 100 + replica,
              "checkpoint_sha256": f"{condition}{replica}".ljust(64, "0")}
    history = [{"epoch": 1, "train_loss": 3.0, "val_loss": 3.1, "train_acc": 0.1, "val_acc": 0.1}]
    return RunSummary(condition, replica, result, history, layers, thresholds)


RUNS = [
    _run("base", 0, 0.80, 0.70, [0.0, 0.0, 0.0]),
    _run("base", 1, 0.82, 0.71, [0.0, 0.0, 0.0]),
    _run("base", 2, 0.81, 0.69, [0.0, 0.0, 0.0]),
    _run("lif", 0, 0.83, 0.72, [0.11, 0.14, 0.10]),
    _run("lif", 1, 0.84, 0.75, [0.11, 0.14, 0.06]),
    _run("lif", 2, 0.82, 0.70, [0.10, 0.20, 0.30]),
]


def test_metrics_values_and_types():
    m = kws_metrics(RUNS)
    json.dumps(m, allow_nan=False)
    assert all(isinstance(v, (int, float, str, bool)) for v in m.values())
    assert m["base.test_acc.mean"] == pytest.approx(0.81)
    assert m["base.test_acc.n"] == 3 and m["base.test_acc.std"] == pytest.approx(0.01)
    assert m["lif.layer1.entropy"] == pytest.approx((0.14 + 0.14 + 0.20) / 3)
    assert m["base.layer2.entropy"] == 0.0 and "base.layer0.threshold_mean" not in m
    assert m["lif.layer0.threshold_mean"] == pytest.approx(0.02)
    assert m["lif.hierarchy.entropy"] == "none" and m["lif.hierarchy.entropy_peak_layer"] == 1
    assert m["lif.hierarchy.entropy_replicas_agreeing"] == 2  # replica 2 is increasing
    assert m["base.hierarchy.entropy"] == "flat"
    ref = stats.ttest_rel([0.83, 0.84, 0.82], [0.80, 0.82, 0.81])
    assert m["ttest.p_value"] == pytest.approx(ref.pvalue) and m["ttest.status"] == "ok"
    assert m["ttest.mean_diff"] == pytest.approx(0.02)
    assert m["lif.r1.torch_seed"] == 101 and len(m["lif.r1.checkpoint_sha256"]) == 64
    assert m["best_model.run"] == "lif-1"  # chosen on validation accuracy


def test_single_replica_writes_na_not_nan():
    m = kws_metrics([RUNS[0], RUNS[3]])
    json.dumps(m, allow_nan=False)
    assert m["base.test_acc.std"] == "n/a" and m["base.test_acc.ci95_low"] == "n/a"
    assert m["ttest.p_value"] == "n/a" and m["ttest.status"].startswith("n/a")
    assert m["ttest.n_pairs"] == 1


def test_best_run_ties_keep_params_order():
    tied = [_run("base", 0, 0.5, 0.7, [0.0]), _run("lif", 0, 0.9, 0.7, [0.1])]
    assert best_run(tied).name == "base-0"


def test_plot_tables():
    rows = layer_rows(RUNS)
    assert [r["layer"] for r in rows] == [0, 1, 2]
    assert rows[0]["base_entropy"] == 0.0 and "lif_threshold_mean" in rows[0] and "base_threshold_mean" not in rows[0]
    assert len(threshold_rows(RUNS)) == 3 * 3 * 2
    assert curve_rows(RUNS[0])[0] == {"epoch": 1, "train_loss": 3.0, "val_loss": 3.1, "train_acc": 0.1, "val_acc": 0.1}


def test_comparison_table_has_seed_rows_and_audio_row():
    rows = comparison_rows(kws_metrics(RUNS))
    assert [r["row"] for r in rows] == ["Transformer / Text", "CfC / Text", "CfC / Audio"]
    assert rows[0]["change_pct"] == -0.75 and rows[0]["lif_gain_pct"] == 0.75
    assert rows[1]["change_pct"] == -0.06
    audio = rows[2]
    assert audio["base"] == 0.81 and audio["lif"] == 0.83
    assert audio["change_pct"] == pytest.approx(round((0.83 - 0.81) / 0.81 * 100, 2))
    assert audio["hierarchy"] == "none (entropy peak at layer 1)"
    assert not any(isinstance(v, float) and math.isnan(v) for r in rows for v in r.values())


def test_per_class_accuracy_hand_values():
    from audioprobe.metrics.classification import confusion_matrix, per_class_accuracy

    cm = confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], n_classes=3)
    acc = per_class_accuracy(cm)
    assert acc[0] == 0.5 and abs(acc[1] - 2 / 3) < 1e-12 and np.isnan(acc[2])
