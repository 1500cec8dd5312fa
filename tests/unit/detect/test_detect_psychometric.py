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
    lev, y, right = _simulate(rng, x50=18.0, slope=0.3, lapse=0.0)  # rises, but DT75 = 21.7 dB lies past 20
    row = psy.fit_with_ci(lev, y, right, np.arange(lev.size), max_lapse=0.1, bootstrap=0, ci=0.95, rng=rng)
    assert row["rise_p"] < psy.RISE_ALPHA
    assert row["dt50_status"] == psy.OK and row["dt75_status"] == psy.HIGH
    assert psy.describe(row, "dt75", "dB").startswith("> 20")


def _flat(per_level=48, levels=(-5.0, 0.0, 5.0, 10.0, 20.0)):
    """Exactly at chance on every level: half of each class right (BA 0.5 everywhere)."""
    lev = np.repeat(np.array(levels), per_level)
    y = np.tile(np.r_[np.ones(per_level // 2, bool), np.zeros(per_level // 2, bool)], len(levels))
    right = np.tile(np.r_[np.ones(per_level // 4, bool), np.zeros(per_level // 4, bool)], 2 * len(levels))
    return lev, y, right


def test_a_curve_flat_at_chance_has_no_rise_not_a_censored_threshold():
    lev, y, right = _flat()
    x, n, k = psy.level_counts(lev, y, right)
    assert np.allclose(k / n, 0.5)
    row = psy.fit_with_ci(lev, y, right, np.arange(lev.size) // 4, max_lapse=0.1, bootstrap=30, ci=0.95,
                          rng=np.random.default_rng(0))
    assert row["rise_p"] == pytest.approx(1.0, abs=1e-6)  # the fit is chance itself: no likelihood gained
    for tag in ("dt50", "dt75"):
        assert row[f"{tag}_status"] == psy.NO_RISE and math.isnan(row[tag])
        assert row[f"{tag}_lo_status"] == row[f"{tag}_hi_status"] == "n/a"
        assert psy.describe(row, tag, "dB") == "no rise above chance"


def test_a_rising_curve_is_never_no_rise():
    rng = np.random.default_rng(2)
    lev, y, right = _simulate(rng, x50=3.0, slope=0.4, lapse=0.04, per_level=48)  # the default design's size
    row = psy.fit_with_ci(lev, y, right, np.arange(lev.size), max_lapse=0.1, bootstrap=30, ci=0.95, rng=rng)
    assert row["rise_p"] < 1e-6
    assert row["dt50_status"] == psy.OK and row["dt75_status"] in (psy.OK, psy.HIGH)


def test_the_rise_test_calls_a_rise_on_flat_data_near_its_nominal_rate():
    """RISE_DF's calibration (psychometric.py): binomial data at chance, 5 levels x 48 clips."""
    rng = np.random.default_rng(5)
    x = np.array([-5.0, 0.0, 5.0, 10.0, 20.0])
    n = np.full(5, 48.0)
    p = [psy.rise_pvalue(psy.fit(x, n, rng.binomial(48, 0.5, 5).astype(float), 0.1).nll, n) for _ in range(200)]
    rate = float(np.mean(np.array(p) < psy.RISE_ALPHA))
    assert 0.01 <= rate <= 0.12, rate


def test_detect_headline_names_no_rise():
    from audioprobe.detect.report import headline_values

    res = {"flat": {"metrics": [{"slice": "all", "bal_acc": 0.5}],
                    "curves": [{"axis": "snr", "slice": "pooled", "status": "ok", "dt75_status": psy.NO_RISE}]}}
    assert headline_values(res, ["flat"])["flat.dt75_snr_db"] == "no-rise"


def test_balanced_accuracy_per_level_weights_classes_equally():
    lev = np.zeros(6)
    y = np.array([1, 1, 1, 1, 0, 0], bool)
    right = np.array([1, 1, 1, 1, 0, 1], bool)  # TPR 1, TNR 0.5 -> BA 0.75 (accuracy 5/6)
    x, n, k = psy.level_counts(lev, y, right)
    assert k[0] / n[0] == pytest.approx(0.75)


def _band_extents_one(p) -> tuple[float, float]:
    if hasattr(p, "get_width"):
        return p.get_x(), p.get_x() + p.get_width()
    xs = p.get_xy()[:, 0]
    return float(xs.min()), float(xs.max())


def _band_extents(ax) -> list[tuple[float, float]]:
    """x extents (data units) of the axvspan bands of an axes (Rectangle in new matplotlib, Polygon in old)."""
    return [_band_extents_one(p) for p in ax.patches]


def test_psychometric_png_draws_a_half_censored_ci_to_the_range_edge_marked_open(tmp_path, monkeypatch):
    """energy DT50 16.2 [5.0, > 20] (issue 21): the band runs from 5.0 to the 20 dB edge, hatched, open arrowhead."""
    from audioprobe.detect import figures

    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: figs.append(fig))
    row = {"system": "energy", "axis": "snr", "slice": "pooled", "status": "ok", "x50": 16.2, "slope": 0.3,
           "lapse": 0.02, "lo": -5.0, "hi": 20.0,
           "dt50": 16.2, "dt50_status": "ok", "dt50_lo": 5.0, "dt50_lo_status": "ok",
           "dt50_hi": float("nan"), "dt50_hi_status": "censored-high", "dt50_text": "16.2 [5, > 20] dB",
           "dt75": 4.0, "dt75_status": "ok", "dt75_lo": 2.0, "dt75_lo_status": "ok",
           "dt75_hi": 6.0, "dt75_hi_status": "ok", "dt75_text": "4 [2, 6] dB"}
    pts = [{"system": "energy", "axis": "snr", "slice": "pooled", "level": v, "bal_acc": b}
           for v, b in ((-5.0, 0.5), (0.0, 0.52), (5.0, 0.55), (10.0, 0.6), (20.0, 0.75))]
    figures.psychometric([row], pts, ["energy"], tmp_path / "p.png", [])
    ax = figs[0].axes[0]
    bands = _band_extents(ax)
    assert (2.0, 6.0) in [(pytest.approx(a), pytest.approx(b)) for a, b in bands]  # the two-sided CI, as before
    half = [b for b in bands if b[0] == pytest.approx(5.0)]
    assert len(half) == 1 and half[0][1] == pytest.approx(20.0)  # reaches the edge of the tested range
    patch = next(p for p in ax.patches if _band_extents_one(p)[0] == pytest.approx(5.0))
    assert patch.get_hatch()  # hatched, not the plain band of a closed interval
    heads = [ln for ln in ax.lines if ln.get_marker() == ">"]
    assert len(heads) == 1 and heads[0].get_xdata()[0] == pytest.approx(20.0) and heads[0].get_mfc() == "none"


def test_ci_band_of_a_low_censored_and_an_undefined_ci():
    import matplotlib.pyplot as plt

    from audioprobe.detect.figures import ci_band

    fig, ax = plt.subplots()
    row = {"lo": -5.0, "hi": 20.0, "dt50_lo": float("nan"), "dt50_lo_status": "censored-low", "dt50_hi": 1.5,
           "dt50_hi_status": "ok", "dt75_lo": float("nan"), "dt75_lo_status": "n/a",
           "dt75_hi": float("nan"), "dt75_hi_status": "n/a"}
    drawn = ci_band(ax, row, "dt50")
    assert _band_extents_one(drawn[0]) == (pytest.approx(-5.0), pytest.approx(1.5))
    assert [ln.get_marker() for ln in drawn[1:]] == ["<"]
    assert ci_band(ax, row, "dt75") == []  # no-rise / undefined: nothing to shade
    plt.close(fig)
