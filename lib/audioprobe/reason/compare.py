"""Uncertainty and paired tests: bootstrap CIs of a mean, paired bootstrap and McNemar between arms."""

from __future__ import annotations

import numpy as np
from scipy import stats


def bootstrap_ci(values: np.ndarray, n_boot: int, seed: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the percentile bootstrap CI (low, high) of the mean of `values` [N]."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))  # (n_boot, N)
    means = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> dict:
    """Return mean(a - b) with its bootstrap CI and a two-sided p-value over the same rows.

    Rows are resampled together, so both arms see the same questions in every replicate;
    p = 2 * min(P(diff <= 0), P(diff >= 0)) over the replicates (capped at 1), with the
    usual +1 correction so it is never exactly 0.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arms must score the same rows: {a.shape} vs {b.shape}")
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))  # (n_boot, N)
    means = d[idx].mean(axis=1)
    p_le = (np.sum(means <= 0) + 1) / (n_boot + 1)
    p_ge = (np.sum(means >= 0) + 1) / (n_boot + 1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return {"diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "p_bootstrap": float(min(1.0, 2 * min(p_le, p_ge)))}


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict:
    """Return McNemar's exact test on paired 0/1 outcomes: discordant counts and two-sided p.

    Only rows where exactly one arm is right carry information; under H0 each such row
    favours a or b with probability 1/2 (a binomial test on the discordant pairs).
    """
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5, alternative="two-sided").pvalue)
    return {"only_a": only_a, "only_b": only_b, "p_mcnemar": p}
