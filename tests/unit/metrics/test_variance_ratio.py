"""Variance ratio from sufficient statistics: the definition, its limits, and both eval flavours."""

from __future__ import annotations

import numpy as np

from audioprobe.metrics.variance_ratio import (
    group_stats,
    variance_ratio,
    variance_ratio_around,
    variance_ratio_samples,
)


def test_constant_clustering_gives_one_and_perfect_clustering_gives_zero():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 4)) * 10
    labels = rng.integers(0, 5, 400)
    y = centres[labels]  # every sample sits exactly on its cluster's centre
    assert abs(variance_ratio(*group_stats(y, np.zeros(400, int), 1)) - 1.0) < 1e-12
    assert variance_ratio(*group_stats(y, labels, 5)) < 1e-9
    noisy = y + rng.standard_normal(y.shape)
    assert abs(variance_ratio(*group_stats(noisy, np.zeros(400, int), 1)) - 1.0) < 1e-12
    assert variance_ratio_samples(noisy, np.zeros(400, int)) == 1.0


def test_stats_formula_matches_the_two_pass_definition():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((300, 6)) + 5.0  # offset: the one-pass form must not cancel badly
    labels = rng.integers(0, 12, 300)
    got = variance_ratio(*group_stats(y, labels, 12))
    assert abs(got - variance_ratio_samples(y, labels)) < 1e-10
    assert 0.0 < got < 1.0


def test_train_means_flavour_is_the_honest_out_of_sample_predictor():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((200, 3))
    lab_train = rng.integers(0, 4, 200)
    means = np.stack([train[lab_train == g].mean(axis=0) for g in range(4)])
    ev = rng.standard_normal((50, 3))
    lab_ev = rng.integers(0, 4, 50)
    counts, sums, sq = group_stats(ev, lab_ev, 4)
    expect = ((ev - means[lab_ev]) ** 2).sum() / ((ev - ev.mean(axis=0)) ** 2).sum()
    assert abs(variance_ratio_around(counts, sums, sq, means) - expect) < 1e-10
    # Means re-estimated on the eval samples themselves always fit them at least as well.
    assert variance_ratio(counts, sums, sq) <= variance_ratio_around(counts, sums, sq, means) + 1e-12
    # On its own samples, train means give exactly the re-estimated VR.
    tc, ts, tq = group_stats(train, lab_train, 4)
    assert abs(variance_ratio_around(tc, ts, tq, means) - variance_ratio(tc, ts, tq)) < 1e-10


def test_undefined_ratios_are_none_never_nan():
    empty = group_stats(np.zeros((0, 3)), np.zeros(0, int), 2)
    assert variance_ratio(*empty) is None
    flat = group_stats(np.ones((10, 3)), np.arange(10) % 2, 2)
    assert variance_ratio(*flat) is None
    assert variance_ratio_around(*flat, np.ones((2, 3))) is None
    assert variance_ratio_samples(np.zeros((0, 2)), np.zeros(0)) is None
