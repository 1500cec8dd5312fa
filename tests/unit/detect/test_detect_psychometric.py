"""detect psychometric fits: known parameters recovered within the bootstrap CI; one DT definition; censoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audioprobe.detect import psychometric as psy


def _simulate(rng, x50, slope, lapse, per_level=400, levels=(-5.0, 0.0, 5.0, 10.0, 20.0)):
    lev = np.repeat(np.array(levels), per_level)
    y = np.tile(np.r_[np.ones(per_level // 2, bool), np.zeros(per_level // 2, bool)], len(levels))
    right = rng.random(lev.size) < psy.curve(lev, x50, slope, lapse)
    return lev, y, right


def test_fit_recovers_known_parameters_within_its_ci():
    rng = np.random.default_rng(0)
    lev, y, right = _simulate(rng, x50=3.0, slope=0.4, lapse=0.04)
    row = psy.fit_with_ci(lev, y, right, np.arange(lev.size), max_lapse=0.1, bootstrap=150, ci=0.95, rng=rng)
    true50, true75 = 3.0, 3.0 + math.log(3) / 0.4
    assert row["dt50_status"] == row["dt75_status"] == "ok"
    assert row["dt50_lo"] <= true50 <= row["dt50_hi"]
    assert row["dt75_lo"] <= true75 <= row["dt75_hi"]
    assert row["dt50_hi"] - row["dt50_lo"] < 4  # informative, not the whole range
    assert 0 <= row["lapse"] <= 0.1


def test_dt_definition_is_f_inverse():
    f = psy.Fit(x50=2.0, slope=0.5, lapse=0.06, nll=0.0)
    assert f.dt(0.5) == pytest.approx(2.0)
    # at DT75 the fitted BA has covered 75 % of its range above chance
    ba = psy.curve(f.dt(0.75), 2.0, 0.5, 0.06)
    assert ba == pytest.approx(0.5 + 0.75 * (1 - 0.5 - 0.06))


def test_exact_binomial_levels_give_exact_parameters():
    x = np.array([-5.0, 0.0, 5.0, 10.0, 20.0])
    n = np.full(5, 1e6)
    k = n * psy.curve(x, 4.0, 0.3, 0.05)
    f = psy.fit(x, n, k, max_lapse=0.1)
    assert (f.x50, f.slope, f.lapse) == (pytest.approx(4.0, abs=1e-2), pytest.approx(0.3, rel=1e-2),
                                         pytest.approx(0.05, abs=1e-3))


def test_threshold_outside_the_range_is_censored_not_extrapolated():
    rng = np.random.default_rng(1)
    lev, y, right = _simulate(rng, x50=-20.0, slope=0.5, lapse=0.02)  # already saturated at -5 dB
    row = psy.fit_with_ci(lev, y, right, np.arange(lev.size), max_lapse=0.1, bootstrap=20, ci=0.95, rng=rng)
    assert row["dt50_status"] == psy.LOW and math.isnan(row["dt50"])
    assert psy.describe(row, "dt50", "dB").startswith("< -5")
    lev, y, right = _simulate(rng, x50=60.0, slope=0.2, lapse=0.0)  # never leaves chance
    row = psy.fit_with_ci(lev, y, right, np.arange(lev.size), max_lapse=0.1, bootstrap=0, ci=0.95, rng=rng)
    assert row["dt75_status"] == psy.HIGH


def test_balanced_accuracy_per_level_weights_classes_equally():
    lev = np.zeros(6)
    y = np.array([1, 1, 1, 1, 0, 0], bool)
    right = np.array([1, 1, 1, 1, 0, 1], bool)  # TPR 1, TNR 0.5 -> BA 0.75 (accuracy 5/6)
    x, n, k = psy.level_counts(lev, y, right)
    assert k[0] / n[0] == pytest.approx(0.75)
