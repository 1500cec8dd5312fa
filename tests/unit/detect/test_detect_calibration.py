"""detect calibration: ECE/MCE/Brier on hand-made tables, threshold and temperature fitted on dev only."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from audioprobe.detect import calibration as cal
from audioprobe.detect.evaluate import binary_metrics, evaluate_system, fit_system
from audioprobe.detect.params import DetectEval


def test_ece_mce_brier_on_a_made_up_table():
    # bins of width 0.05 on [0.5, 1]: confidences 0.55 (bin 1) and 0.95 (bin 9)
    # bin 1: p = 0.55 for 4 SPEECH clips, 2 of which are NONSPEECH -> accuracy 0.5, conf 0.55
    # bin 9: p = 0.05 (conf 0.95, predicts NONSPEECH) for 6 clips, all right -> accuracy 1.0
    p = np.array([0.55] * 4 + [0.05] * 6)
    y = np.array([1, 1, 0, 0] + [0] * 6, bool)
    ece, mce = cal.ece_mce(p, y, bins=10)
    assert ece == pytest.approx((4 * 0.05 + 6 * 0.05) / 10)
    assert mce == pytest.approx(0.05)
    assert cal.brier(p, y) == pytest.approx((2 * 0.45**2 + 2 * 0.55**2 + 6 * 0.05**2) / 10)
    rows = cal.reliability(p, y, 10)
    assert [r["count"] for r in rows] == [0, 4, 0, 0, 0, 0, 0, 0, 0, 6]
    assert rows[1]["accuracy"] == 0.5 and rows[9]["accuracy"] == 1.0
    assert math.isnan(rows[0]["confidence"])


def test_ece_of_an_overconfident_system():
    # always p = 1.0 (confidence 1) but right only 70 % of the time: ECE = MCE = 0.3
    y = np.array([1] * 7 + [0] * 3, bool)
    ece, mce = cal.ece_mce(np.ones(10), y)
    assert (ece, mce) == (pytest.approx(0.3), pytest.approx(0.3))


def test_binary_metrics_known_counts():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)
    m = binary_metrics(y, pred, pred.astype(float), 10)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 5)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["acc_speech"] == pytest.approx(0.75) and m["acc_nonspeech"] == pytest.approx(5 / 6)
    assert m["bal_acc"] == pytest.approx((0.75 + 5 / 6) / 2)
    assert m["precision_speech"] == pytest.approx(0.75) and m["recall_speech"] == pytest.approx(0.75)
    assert m["precision_nonspeech"] == pytest.approx(5 / 6) and m["f1_nonspeech"] == pytest.approx(5 / 6)


def test_threshold_maximises_dev_balanced_accuracy():
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1], bool)
    th = cal.fit_threshold(s, y)
    assert 0.3 < th < 0.6 and th == pytest.approx(0.45)
    assert cal.balanced_accuracy(y, s >= th) == 1.0


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    y = rng.random(z.size) < cal.sigmoid(z)  # true logit z
    s = cal.sigmoid(3.0 * z)  # scores 3x overconfident
    assert cal.fit_temperature(s, y) == pytest.approx(3.0, rel=0.05)


def _table(rng, n=120):
    splits = np.array(["train", "dev", "test"])[rng.integers(0, 3, n)]
    label = np.where(rng.random(n) < 0.5, "SPEECH", "NONSPEECH")
    score = np.clip(np.where(label == "SPEECH", 0.6, 0.4) + rng.normal(0, 0.2, n), 0, 1)
    return pl.DataFrame({
        "clip_id": [f"c{i:04d}" for i in range(n)], "split": splits, "label": label, "score": score,
        "snr_db": rng.choice([-5.0, 0.0, 5.0, 10.0, 20.0], n), "duration_ms": rng.choice([200, 500, 1000], n),
        "nonspeech_type": np.where(label == "SPEECH", "", "music"),
        "source_file": [f"f{i % 40}" for i in range(n)], "noise_file": ["bg"] * n,
    })


def test_fitted_values_ignore_test_labels():
    rng = np.random.default_rng(1)
    df = _table(rng)
    is_test = df["split"] == "test"
    shuffled = df.with_columns(pl.when(is_test).then(pl.Series(rng.permutation(df["label"].to_numpy())))
                               .otherwise(pl.col("label")).alias("label"))
    assert not shuffled["label"].equals(df["label"])
    cfg = DetectEval(bootstrap=5)
    for kind in ("probability", "fraction"):
        a = evaluate_system("x", {"score_kind": kind}, df, cfg, np.random.default_rng(0))["fitted"]
        b = evaluate_system("x", {"score_kind": kind}, shuffled, cfg, np.random.default_rng(0))["fitted"]
        assert a == b
    # ...while dev labels do move them (the test above could fail)
    dev_shuffled = df.with_columns(pl.when(df["split"] == "dev").then(pl.Series(rng.permutation(df["label"].to_numpy())))
                                   .otherwise(pl.col("label")).alias("label"))
    assert fit_system("x", "probability", dev_shuffled) != fit_system("x", "probability", df)


def test_balanced_accuracy_ci_is_a_class_stratified_bootstrap():
    """Known answers: a perfect system's CI is [1, 1]; a system right on every SPEECH clip and on
    half the NONSPEECH clips has BA 0.75 and a CI around it whose width matches the binomial
    spread of the NONSPEECH recall alone (the SPEECH recall cannot move); bounds stay in [0, 1]."""
    from audioprobe.detect.evaluate import bal_acc_ci

    y = np.array([True] * 200 + [False] * 200)
    assert bal_acc_ci(y, y.copy(), 400, 0.95, np.random.default_rng(0)) == (1.0, 1.0)
    pred = y.copy()
    pred[200:300] = True  # half the NONSPEECH clips called SPEECH
    lo, hi = bal_acc_ci(y, pred, 2000, 0.95, np.random.default_rng(0))
    half_width = 1.96 * np.sqrt(0.25 / 200) / 2  # binomial sd of one recall, halved by the mean
    assert lo == pytest.approx(0.75 - half_width, abs=0.006) and hi == pytest.approx(0.75 + half_width, abs=0.006)
    assert np.isnan(bal_acc_ci(y[:200], pred[:200], 100, 0.95, np.random.default_rng(0))[0])  # one class only
    assert np.isnan(bal_acc_ci(y, pred, 0, 0.95, np.random.default_rng(0))[0])
