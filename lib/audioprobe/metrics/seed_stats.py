"""Across-replica statistics: mean ± std, 95 % t confidence interval, paired t-test.

An interval of a bounded quantity (an accuracy in [0, 1], a difference of two accuracies in
[-1, 1]) is the t-interval cut to those bounds (`summarize(..., bounds=...)`). The true mean
lies inside its bounds, so the cut interval contains it exactly when the t-interval does: the
coverage is unchanged, and no interval claims an accuracy above 1 (three replicas with
t(0.975, 2) = 4.30 reach past 1 easily). A bound at 0 or 1 then means "the data cannot rule out
the bound", not that the spread ends there.

Undefined quantities (a std of one value, a t-test on fewer than two pairs or on
differences with zero variance) come back as None with a reason, never as NaN, so
metrics JSON stays valid and `dvc metrics diff` never compares NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def summarize(values: Sequence[float], confidence: float = 0.95,
              bounds: tuple[float, float] | None = None) -> dict[str, float | int | None]:
    """Return n, mean, sample std (ddof 1) and the two-sided t confidence interval of the mean.

    std and the interval are None when n < 2. With `bounds` (lo, hi), the range the quantity
    lives in, every value must lie in it and the interval is cut to it (module docstring).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    if not np.isfinite(x).all():
        raise ValueError(f"summarize got non-finite values: {x.tolist()}")
    if bounds is not None and not (bounds[0] <= x.min() and x.max() <= bounds[1]):
        raise ValueError(f"summarize: values {x.tolist()} outside their bounds {list(bounds)}")
    out: dict[str, float | int | None] = {"n": int(x.size), "mean": float(x.mean())}
    if x.size < 2:
        return {**out, "std": None, "ci95_low": None, "ci95_high": None}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=x.size - 1)) * std / math.sqrt(x.size)
    lo, hi = out["mean"] - half, out["mean"] + half
    if bounds is not None:
        lo, hi = max(lo, float(bounds[0])), min(hi, float(bounds[1]))
    return {**out, "std": std, "ci95_low": lo, "ci95_high": hi}


def constant_up_to_rounding(values: np.ndarray, scale: float = 1.0, rel: float = 1e-9) -> bool:
    """Return True when the spread of `values` is below `rel` times `scale` (or exactly 0).

    Values computed from inputs of magnitude `scale` carry rounding errors of about
    1e-16·scale; `rel` = 1e-9 leaves a wide margin and is still far below any real
    difference between accuracies (1 / n_test >= 1e-7 for any test set that fits in memory).
    """
    values = np.asarray(values, dtype=np.float64)
    return values.size == 0 or float(np.ptp(values)) <= rel * max(scale, float(np.abs(values).max()), 1e-300)


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> dict[str, float | int | str | None]:
    """Return the two-sided paired t-test of b against a (pairs share an index).

    Keys: n_pairs, mean_diff (b − a), t_stat, p_value, status ('ok' or why the test
    is undefined; t_stat and p_value are None then).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_ttest needs two equal-length 1-D sequences, got {x.shape} and {y.shape}")
    diff = y - x
    out: dict[str, float | int | str | None] = {
        "n_pairs": int(x.size),
        "mean_diff": float(diff.mean()) if x.size else None,
        "t_stat": None,
        "p_value": None,
    }
    if x.size < 2:
        return {**out, "status": "n/a: fewer than 2 pairs"}
    if constant_up_to_rounding(diff, scale=max(float(np.abs(x).max()), float(np.abs(y).max()))):
        # e.g. base [28, 36, 42]/70 and lif = base + 1/70: the float differences differ in
        # the last bit, and scipy returns t ~ 1e15, p ~ 1e-30 for what is no evidence at all.
        return {**out, "status": "n/a: paired differences are constant (zero variance)"}
    res = stats.ttest_rel(y, x)
    return {**out, "t_stat": float(res.statistic), "p_value": float(res.pvalue), "status": "ok"}
