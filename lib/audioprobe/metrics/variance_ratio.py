"""Variance ratio VR = SSE_within / SSE_total of a target under a clustering.

Everything works on per-group sufficient statistics (count n_g, sum S_g = Σ y, and
Q_g = Σ ||y||²), so one pass over the data serves every slice, split and speaker:

    SSE_total  = Σ_g Q_g − ||Σ_g S_g||² / Σ_g n_g          (around the set's own mean)
    SSE_within = Σ_g Q_g − Σ_g ||S_g||² / n_g              (each group's own mean: `vr`)
    SSE_around = Σ_g Q_g − 2 Σ_g μ_g·S_g + Σ_g n_g ||μ_g||² (given means μ, e.g. train's)

Both terms of a ratio always cover exactly the same samples.
Undefined ratios (no samples, or zero total variance) come back as None, never NaN,
so metrics JSON stays valid; callers must treat None as "no evidence", never a pass.
"""

from __future__ import annotations

import numpy as np


def sse_total(counts: np.ndarray, sums: np.ndarray, sq: np.ndarray) -> float:
    """Return Σ ||y − ȳ||² over all groups pooled (ȳ = mean of the pooled set)."""
    n = float(np.sum(counts))
    if n == 0:
        return 0.0
    s = np.asarray(sums, dtype=np.float64).reshape(-1, sums.shape[-1]).sum(axis=0)
    return max(float(np.sum(sq)) - float(s @ s) / n, 0.0)


def sse_within(counts: np.ndarray, sums: np.ndarray, sq: np.ndarray) -> float:
    """Return Σ_g Σ_{i∈g} ||y_i − ȳ_g||² (each group around its own mean; empty groups add 0)."""
    n = np.asarray(counts, dtype=np.float64).reshape(-1)
    s = np.asarray(sums, dtype=np.float64).reshape(n.size, -1)
    nz = n > 0
    between = float(np.einsum("gd,gd->", s[nz], s[nz] / n[nz, None]))
    return max(float(np.sum(sq)) - between, 0.0)


def sse_around(counts: np.ndarray, sums: np.ndarray, sq: np.ndarray, means: np.ndarray) -> float:
    """Return Σ_g Σ_{i∈g} ||y_i − μ_g||² for given group means μ (G, D)."""
    n = np.asarray(counts, dtype=np.float64).reshape(-1)
    s = np.asarray(sums, dtype=np.float64).reshape(n.size, -1)
    mu = np.asarray(means, dtype=np.float64).reshape(n.size, -1)
    cross = float(np.einsum("gd,gd->", mu, s))
    norm = float(np.einsum("g,gd,gd->", n, mu, mu))
    return max(float(np.sum(sq)) - 2.0 * cross + norm, 0.0)


def variance_ratio(counts: np.ndarray, sums: np.ndarray, sq: np.ndarray) -> float | None:
    """Return SSE_within / SSE_total (group means re-estimated on these samples), or None."""
    total = sse_total(counts, sums, sq)
    if total <= 0.0:
        return None
    return sse_within(counts, sums, sq) / total


def variance_ratio_around(
    counts: np.ndarray, sums: np.ndarray, sq: np.ndarray, means: np.ndarray
) -> float | None:
    """Return SSE around the given means / SSE_total around this set's mean, or None.

    With train cluster means this is the honest out-of-sample predictor; it can exceed 1.
    """
    total = sse_total(counts, sums, sq)
    if total <= 0.0:
        return None
    return sse_around(counts, sums, sq, means) / total


def group_stats(y: np.ndarray, labels: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (counts (G,), sums (G, D), Σ||y||² (G,)) float64 of samples y (n, D) by label."""
    y = np.asarray(y, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(lab, minlength=n_groups).astype(np.float64)
    sums = np.zeros((n_groups, y.shape[1]))
    np.add.at(sums, lab, y)
    sq = np.bincount(lab, weights=np.einsum("nd,nd->n", y, y), minlength=n_groups)
    return counts, sums, sq


def variance_ratio_samples(y: np.ndarray, labels: np.ndarray) -> float | None:
    """Return VR straight from samples by the two-pass definition (reference for tests)."""
    y = np.asarray(y, dtype=np.float64)
    lab = np.asarray(labels)
    if y.shape[0] == 0:
        return None
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    if total <= 0.0:
        return None
    within = 0.0
    for g in np.unique(lab):
        yg = y[lab == g]
        within += float(((yg - yg.mean(axis=0)) ** 2).sum())
    return within / total
