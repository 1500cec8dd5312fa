"""Entropy reduction of a target under a clustering, with diagonal Gaussian entropies.

EXPERIMENTS.md §2: H = ½ Σ_d log σ²_d (σ² floored at 1e-10, no 2πe constant, as the
origin); H_cond = count-weighted mean of the per-cluster H_c; reduction =
(H − H_cond) / |H|. The origin divided by H, whose sign flips once normalised targets
make H negative, turning a real reduction into an apparent increase; dividing by |H|
keeps "positive = the clusters reduce uncertainty", and both H values are reported
so the sign is never ambiguous. Variances are population variances (ddof 0); a
one-sample cluster has variance exactly 0 (floored), not a rounding residue.

Targets normalised per dim with train statistics make H = 0 on the train split by
construction, where any relative reduction is noise over ~0: it is then undefined
(None, |H| < 1e-6 nats per dim), and `reduction_nats` = (H − H_cond) / D, always
defined, carries the effect.
"""

from __future__ import annotations

import numpy as np

VAR_FLOOR = 1e-10
REL_UNDEFINED_BELOW = 1e-6  # nats per dim


def diag_gaussian_entropy(var: np.ndarray) -> np.ndarray:
    """Return ½ Σ_d log max(σ²_d, 1e-10) over the last axis."""
    return 0.5 * np.log(np.maximum(np.asarray(var, dtype=np.float64), VAR_FLOOR)).sum(axis=-1)


def entropy_reduction(counts: np.ndarray, sums: np.ndarray, sq_dims: np.ndarray) -> dict | None:
    """Return {h, h_cond, reduction, reduction_nats} from per-cluster stats, or None when empty.

    counts (G,), sums (G, D) = Σ y, sq_dims (G, D) = Σ y² per dim; empty clusters carry
    no weight. reduction = (H − H_cond)/|H| (None when |H| is ~0, see module doc);
    reduction_nats = (H − H_cond)/D.
    """
    n = np.asarray(counts, dtype=np.float64).reshape(-1)
    s = np.asarray(sums, dtype=np.float64).reshape(n.size, -1)
    q = np.asarray(sq_dims, dtype=np.float64).reshape(n.size, -1)
    total = n.sum()
    if total == 0:
        return None
    mean = s.sum(axis=0) / total
    var = q.sum(axis=0) / total - mean**2
    nz = n > 0
    mc = s[nz] / n[nz, None]
    var_c = q[nz] / n[nz, None] - mc**2
    var_c[n[nz] == 1] = 0.0
    return _result(float(diag_gaussian_entropy(var)),
                   float((n[nz] * diag_gaussian_entropy(var_c)).sum() / total), s.shape[1])


def _result(h: float, h_cond: float, dim: int) -> dict:
    defined = abs(h) >= REL_UNDEFINED_BELOW * dim
    return {"h": h, "h_cond": h_cond, "reduction": (h - h_cond) / abs(h) if defined else None,
            "reduction_nats": (h - h_cond) / dim}


def entropy_reduction_samples(y: np.ndarray, labels: np.ndarray) -> dict:
    """Return the same dict straight from samples (two-pass variances; reference for tests)."""
    y = np.asarray(y, dtype=np.float64)
    lab = np.asarray(labels)
    h = float(diag_gaussian_entropy(y.var(axis=0)))
    h_cond = 0.0
    for g in np.unique(lab):
        yg = y[lab == g]
        h_cond += yg.shape[0] * float(diag_gaussian_entropy(yg.var(axis=0)))
    return _result(h, h_cond / y.shape[0], y.shape[1])
