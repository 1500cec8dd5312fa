"""Across-replica statistics against hand values and scipy."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from audioprobe.metrics.classification import accuracy, confusion_matrix
from audioprobe.metrics.seed_stats import paired_ttest, summarize


def test_summarize_hand_values():
    out = summarize([1.0, 2.0, 3.0])
    assert out["n"] == 3 and out["mean"] == 2.0 and out["std"] == pytest.approx(1.0)
    half = 4.302652729749464 / math.sqrt(3)  # t_{0.975, df=2}
    assert out["ci95_low"] == pytest.approx(2.0 - half)
    assert out["ci95_high"] == pytest.approx(2.0 + half)


def test_summarize_single_value_has_no_spread():
    assert summarize([0.8]) == {"n": 1, "mean": 0.8, "std": None, "ci95_low": None, "ci95_high": None}
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_paired_ttest_matches_scipy():
    base = [0.855, 0.849, 0.861, 0.858, 0.866, 0.846]
    lif = [0.860, 0.857, 0.858, 0.862, 0.864, 0.858]
    out = paired_ttest(base, lif)
    ref = stats.ttest_rel(lif, base)
    assert out["status"] == "ok" and out["n_pairs"] == 6
    assert out["t_stat"] == pytest.approx(ref.statistic) and out["p_value"] == pytest.approx(ref.pvalue)
    assert out["mean_diff"] == pytest.approx(sum(lif) / 6 - sum(base) / 6)


def test_paired_ttest_hand_value():
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1/sqrt 3) = 2·sqrt 3
    out = paired_ttest([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    assert out["t_stat"] == pytest.approx(2 * math.sqrt(3))
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(2 * math.sqrt(3), df=2))


@pytest.mark.parametrize(("a", "b"), [([0.5], [0.6]), ([0.5, 0.6], [0.6, 0.7]), ([], [])])
def test_paired_ttest_undefined_cases_have_no_nan(a, b):
    out = paired_ttest(a, b)
    assert out["status"].startswith("n/a") and out["p_value"] is None and out["t_stat"] is None
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in out.values())


def test_paired_ttest_rejects_unequal_lengths():
    with pytest.raises(ValueError):
        paired_ttest([1.0, 2.0], [1.0])


def test_accuracy_and_confusion_matrix():
    actual = [0, 0, 1, 2, 2, 2]
    predicted = [0, 1, 1, 2, 0, 2]
    assert accuracy(predicted, actual) == pytest.approx(4 / 6)
    cm = confusion_matrix(actual, predicted, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6 and cm.trace() == 4
    with pytest.raises(ValueError):
        confusion_matrix([3], [0], 3)


def test_summarize_cuts_the_interval_of_a_bounded_quantity_to_its_bounds():
    """Three replicas of an accuracy: the t interval reaches past 1, the bounded one stops at 1.0."""
    acc = [0.9, 1.0, 1.0]
    free = summarize(acc)
    half = stats.t.ppf(0.975, 2) * 0.05773502691896258 / math.sqrt(3)
    assert free["ci95_high"] == pytest.approx(free["mean"] + half) and free["ci95_high"] > 1.0  # the defect: 1.11
    out = summarize(acc, bounds=(0.0, 1.0))
    assert out["ci95_high"] == 1.0
    assert out["ci95_low"] == pytest.approx(free["ci95_low"]) and out["mean"] == free["mean"]
    assert out["std"] == pytest.approx(0.05773502691896258)
    low = summarize([0.0, 0.0, 0.1], bounds=(0.0, 1.0))
    assert low["ci95_low"] == 0.0 and low["ci95_high"] == pytest.approx(summarize([0.0, 0.0, 0.1])["ci95_high"])
    with pytest.raises(ValueError, match="outside their bounds"):
        summarize([0.5, 1.2], bounds=(0.0, 1.0))
