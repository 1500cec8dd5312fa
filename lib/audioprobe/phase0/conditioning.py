"""Conditioning schemes: train-only fits of PCA / k-means / quartile bins, and assignment.

Every fit sees train-split rows only; eval and held-out rows are
only transformed and assigned with the saved arrays (`assign`). Fitted models are plain
arrays (safetensors), never pickles:

- `mean_vq64`: mean-pooled context → k-means K (k-means++, max_iter, n_init)
- `pca8_vq256`: flattened context (W·D) → PCA(k) → k-means K
- `pca8_quartile`: PCA(k) → per-component quartile edges from train → 4^k bin ids
- random control: the learned ids permuted across a split's samples (`permute_labels`)

k-means is fitted on a documented, seeded subsample of train contexts (sizes recorded
in fit.json and the metrics tables): the spec's k-means++ with n_init 10 on all ~800 k train
frames takes ~6 min on 2 cores, and VR moved by ≤ 2 % of its effect size between a
25–30 k subsample and the full fit, the same as seed noise (feasibility notes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from audioprobe.runtime.errors import DataError
from audioprobe.phase0.context import (
    BLOCK_ROWS,
    block_window_means,
    block_window_scores,
    gather_window_means,
    gather_windows,
    iter_blocks,
)
from audioprobe.phase0.frames import SPLITS

SCHEMES = ("mean_vq64", "pca8_vq256", "pca8_quartile")
PCA_SCHEMES = ("pca8_vq256", "pca8_quartile")
QUARTILES = (0.25, 0.5, 0.75)
# Bin centre per component = median of the train scores inside each quartile interval.
QUARTILE_CENTRES = (0.125, 0.375, 0.625, 0.875)
KMEANS_INIT = "k-means++"  # sklearn KMeans init (recorded in fit.json)
# The spec's (and sklearn's default) k-means settings: the reference the chosen settings
# are measured against (bench.phase0 --reference; the real-fixture agreement test).
KMEANS_REFERENCE = {"kmeans_n_init": 10, "kmeans_max_iter": 100, "kmeans_tol": 1e-4}


@dataclass(frozen=True)
class FitSettings:
    """Everything a fit depends on (mirrors params phase0.context + phase0.conditioning + seed)."""

    window: int = 8
    schemes: tuple[str, ...] = SCHEMES
    mean_vq_k: int = 64
    pca_components: int = 8
    pca_vq_k: int = 256
    kmeans_n_init: int = 1
    kmeans_max_iter: int = 300
    kmeans_tol: float = 1e-4  # sklearn's relative tolerance (x mean per-dim variance) on centre moves
    kmeans_fit_samples: int = 25_000  # 0 = every train context
    pca_fit_samples: int = 32_768  # 0 = every train context
    seed: int = 42

    @classmethod
    def from_params(cls, context, conditioning, seed: int) -> FitSettings:
        """Settings from the params groups phase0.context and phase0.conditioning, and the global seed."""
        c = conditioning
        return cls(window=context.window, schemes=tuple(c.schemes), mean_vq_k=c.mean_vq_k,
                   pca_components=c.pca_components, pca_vq_k=c.pca_vq_k, kmeans_n_init=c.kmeans_n_init,
                   kmeans_max_iter=c.kmeans_max_iter, kmeans_tol=c.kmeans_tol,
                   kmeans_fit_samples=c.kmeans_fit_samples, pca_fit_samples=c.pca_fit_samples, seed=seed)


def subsample_rows(rows: np.ndarray, n: int, seed: int, lag: int) -> np.ndarray:
    """Return a seeded subsample of `n` rows (all when n is 0 or >= len), sorted."""
    rows = np.asarray(rows, dtype=np.int64)
    if n <= 0 or n >= rows.size:
        return np.sort(rows)
    rng = np.random.default_rng([seed, lag, 0])
    return np.sort(rng.choice(rows, size=n, replace=False))


def _sub_seed(seed: int, *keys: int) -> int:
    """A reproducible int32 random_state for one (lag, scheme) fit."""
    return int(np.random.default_rng([seed, *keys]).integers(2**31 - 1))


def fit_kmeans(points: np.ndarray, k: int, settings: FitSettings, seed: int, what: str) -> tuple[np.ndarray, dict]:
    """Return (centroids (k, d) float32, info) of sklearn k-means++ on `points`."""
    if points.shape[0] < k:
        raise DataError(
            f"{what}: k-means with K={k} needs at least {k} train contexts, got {points.shape[0]}; "
            "use more data or lower the K in params.yaml phase0.conditioning"
        )
    # One BLAS thread: k-means++ seeding runs many tiny (2 + log K) × n distance products,
    # where a second OpenBLAS thread cost 10× on a busy 2-core box (1.6 s → 17 s per init);
    # Lloyd's iterations parallelise with OpenMP and already pin BLAS to one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        km = KMeans(
            n_clusters=k,
            init=KMEANS_INIT,
            n_init=settings.kmeans_n_init,
            max_iter=settings.kmeans_max_iter,
            tol=settings.kmeans_tol,
            random_state=seed,
        ).fit(points)
    info = {
        "k": int(k),
        "fit_samples": int(points.shape[0]),
        "n_iter": int(km.n_iter_),
        "inertia_per_sample": float(km.inertia_) / points.shape[0],
    }
    return km.cluster_centers_.astype(np.float32), info


def kmeans_curve(points: np.ndarray, k: int, settings: FitSettings, seed: int) -> dict:
    """Return Lloyd's convergence from one k-means++ start: inertia per iteration, iterations, capped.

    The same start as `fit_kmeans`'s first init (sklearn's `kmeans_plusplus` with the same
    random state), then plain Lloyd steps in float64 until sklearn's stopping rule (squared
    centre shift <= tol x mean per-dim variance) or max_iter. For the bench's convergence
    report only; the fit itself is sklearn's.
    """
    from sklearn.cluster import kmeans_plusplus

    x = np.asarray(points, dtype=np.float64)
    tol = settings.kmeans_tol * float(np.mean(np.var(x, axis=0)))
    rng = np.random.RandomState(seed)
    with threadpool_limits(limits=1, user_api="blas"):
        c, _ = kmeans_plusplus(x, k, random_state=rng)
    xx = (x * x).sum(axis=1)
    inertia: list[float] = []
    capped = True
    for _ in range(settings.kmeans_max_iter):
        d2 = xx[:, None] - 2.0 * (x @ c.T) + (c * c).sum(axis=1)[None, :]
        lab = np.argmin(d2, axis=1)
        inertia.append(float(np.maximum(d2[np.arange(x.shape[0]), lab], 0).sum()))
        counts = np.bincount(lab, minlength=k)
        onehot = np.zeros((x.shape[0], k))
        onehot[np.arange(x.shape[0]), lab] = 1.0
        new = onehot.T @ x
        keep = counts > 0
        new[keep] /= counts[keep, None]
        new[~keep] = c[~keep]
        shift = float(((new - c) ** 2).sum())
        c = new
        if shift <= tol:
            capped = False
            break
    return {"n_iter": len(inertia), "capped": capped, "inertia": inertia}


def canonical_components(components: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return components sorted by variance (descending, stable), each with its largest-|.| entry > 0.

    Nearly equal PCA variances rotate components between fits; a fixed order and sign
    keeps the quartile edges (per component) from moving for the same subspace.
    """
    order = np.argsort(-np.asarray(variance), kind="stable")
    comp = np.array(components[order], dtype=np.float64)
    pivot = np.argmax(np.abs(comp), axis=1)
    sign = np.sign(comp[np.arange(comp.shape[0]), pivot])
    sign[sign == 0] = 1.0
    return comp * sign[:, None], np.asarray(variance)[order]


def fit_pca(windows: np.ndarray, k: int, seed: int) -> dict[str, np.ndarray]:
    """Return PCA arrays (mean, components, explained variance [+ ratio]) of flattened windows.

    Randomized SVD on the gathered windows (copy=False: the caller's array is centred in
    place, which keeps a 100 k × 4096 fit inside one copy of the windows).
    """
    if windows.shape[0] <= k:
        raise DataError(f"PCA({k}) needs more than {k} train contexts, got {windows.shape[0]}")
    pca = PCA(n_components=k, svd_solver="randomized", copy=False, random_state=seed).fit(windows)
    comp, var = canonical_components(pca.components_, pca.explained_variance_)
    order = np.argsort(-pca.explained_variance_, kind="stable")
    return {
        "pca.mean": pca.mean_.astype(np.float32),
        "pca.components": comp.astype(np.float32),
        "pca.explained_variance": var.astype(np.float64),
        "pca.explained_variance_ratio": pca.explained_variance_ratio_[order].astype(np.float64),
    }


def nearest(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (index of the nearest centroid int32, Euclidean distance float32) per point."""
    p = np.asarray(points, dtype=np.float32)
    c = np.asarray(centroids, dtype=np.float32)
    d2 = (p * p).sum(axis=1, keepdims=True) - 2.0 * (p @ c.T) + (c * c).sum(axis=1)[None, :]  # (n, K)
    lab = np.argmin(d2, axis=1)
    dist = np.sqrt(np.maximum(d2[np.arange(p.shape[0]), lab], 0.0))
    return lab.astype(np.int32), dist.astype(np.float32)


def quartile_ids(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return bin ids Σ_j q_j·4^j (int32), q_j = number of edges of component j <= score_j."""
    k = edges.shape[0]
    q = np.empty(scores.shape, dtype=np.int64)
    for j in range(k):
        q[:, j] = np.searchsorted(edges[j], scores[:, j], side="right")
    return (q @ (4 ** np.arange(k, dtype=np.int64))).astype(np.int32)


def quartile_centres(ids: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Return the (n, k) centre of each bin id from per-component centres (k, 4)."""
    k = centres.shape[0]
    digits = (np.asarray(ids, dtype=np.int64)[:, None] // (4 ** np.arange(k))[None, :]) % 4  # (n, k)
    return centres[np.arange(k)[None, :], digits]


def _projection_matrix(components: np.ndarray, window: int, dim: int) -> np.ndarray:
    """Return (D, W·k): x_row @ it gives, for each window slot j, x_row · V_j (slot-major)."""
    k = components.shape[0]
    v = components.reshape(k, window, dim)  # (k, W, D)
    return np.ascontiguousarray(v.transpose(2, 1, 0).reshape(dim, window * k)).astype(np.float32)  # (D, W·k)


def context_features(
    x: np.ndarray, rows: np.ndarray, lag: int, window: int, tensors: dict[str, np.ndarray],
    want_means: bool, block: int = BLOCK_ROWS,
):
    """Yield (i0, i1, means (n, D) or None, scores (n, k) or None) for sorted target rows."""
    proj = offset = None
    if "pca.components" in tensors:
        comp = tensors["pca.components"]
        proj = _projection_matrix(comp, window, x.shape[1])
        offset = (tensors["pca.mean"].astype(np.float64) @ comp.T.astype(np.float64)).astype(np.float32)
    for i0, i1, lo, hi in iter_blocks(rows, window - 1 + lag, block):
        r = rows[i0:i1]
        means = block_window_means(x, r, lo, hi, [lag], window)[lag] if want_means else None
        scores = None
        if proj is not None:
            k = tensors["pca.components"].shape[0]
            projected = (x[lo:hi] @ proj).reshape(hi - lo, window, k)  # (span, W, k)
            scores = block_window_scores(projected, r, lo, lag, window, offset)
        yield i0, i1, means, scores


def fit_lag(
    x: np.ndarray, train_rows: np.ndarray, lag: int, settings: FitSettings, timings: dict | None = None
) -> tuple[dict, dict]:
    """Return (tensors, info): every scheme of `settings.schemes` fitted on train rows only.

    `info` holds only facts that are the same on every machine (it is saved in a DVC
    output); wall-clock seconds per step go to `timings` when one is given, for printing.
    """
    train_rows = np.sort(np.asarray(train_rows, dtype=np.int64))
    s = settings
    tensors: dict[str, np.ndarray] = {}
    info: dict = {"lag": int(lag), "n_train_contexts": int(train_rows.size)}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if timings is not None:
            timings[name] = round(now - clock, 3)
        clock = now

    km_rows = subsample_rows(train_rows, s.kmeans_fit_samples, s.seed, lag)
    info["kmeans_fit_samples"] = int(km_rows.size)
    if "mean_vq64" in s.schemes:
        means = gather_window_means(x, km_rows, lag, s.window)
        tensors["mean_vq64.centroids"], info["mean_vq64"] = fit_kmeans(
            means, s.mean_vq_k, s, _sub_seed(s.seed, lag, 1), f"lag {lag} mean_vq64")
        del means
        lap("mean_vq64")
    if any(name in s.schemes for name in PCA_SCHEMES):
        pca_rows = subsample_rows(train_rows, s.pca_fit_samples, s.seed, lag)
        windows = gather_windows(x, pca_rows, lag, s.window)  # (n, W·D)
        tensors.update(fit_pca(windows, s.pca_components, _sub_seed(s.seed, lag, 2)))
        del windows
        lap("pca")
        ratio = tensors["pca.explained_variance_ratio"]
        info["pca"] = {
            "components": int(s.pca_components),
            "fit_samples": int(pca_rows.size),
            "explained_variance_ratio": [float(v) for v in ratio],
            "explained_variance_ratio_sum": float(ratio.sum()),
        }
        scores = np.empty((train_rows.size, s.pca_components), dtype=np.float32)
        for i0, i1, _, sc in context_features(x, train_rows, lag, s.window, tensors, want_means=False):
            scores[i0:i1] = sc
        lap("pca_scores")
        if "pca8_vq256" in s.schemes:
            sub = scores[np.searchsorted(train_rows, km_rows)]
            tensors["pca8_vq256.centroids"], info["pca8_vq256"] = fit_kmeans(
                sub, s.pca_vq_k, s, _sub_seed(s.seed, lag, 3), f"lag {lag} pca8_vq256")
            lap("pca8_vq256")
        if "pca8_quartile" in s.schemes:
            s64 = scores.astype(np.float64)
            tensors["pca8_quartile.edges"] = np.quantile(s64, QUARTILES, axis=0).T.astype(np.float32)  # (k, 3)
            tensors["pca8_quartile.centres"] = np.quantile(s64, QUARTILE_CENTRES, axis=0).T.astype(np.float32)  # (k, 4)
            info["pca8_quartile"] = {"k": int(4**s.pca_components), "fit_samples": int(train_rows.size)}
            lap("pca8_quartile")
    info["sklearn"] = sklearn.__version__
    return tensors, info


def assign(
    x: np.ndarray, rows: np.ndarray, lag: int, tensors: dict[str, np.ndarray], settings: FitSettings
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {scheme: (cluster ids int32, assignment distance float32)} for sorted target rows.

    Transform + assign only: nothing here is estimated from `rows`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n = rows.size
    out = {name: (np.empty(n, np.int32), np.empty(n, np.float32)) for name in settings.schemes}
    want_means = "mean_vq64" in settings.schemes
    for i0, i1, means, scores in context_features(x, rows, lag, settings.window, tensors, want_means):
        if want_means:
            lab, dist = nearest(means, tensors["mean_vq64.centroids"])
            out["mean_vq64"][0][i0:i1], out["mean_vq64"][1][i0:i1] = lab, dist
        if "pca8_vq256" in settings.schemes:
            lab, dist = nearest(scores, tensors["pca8_vq256.centroids"])
            out["pca8_vq256"][0][i0:i1], out["pca8_vq256"][1][i0:i1] = lab, dist
        if "pca8_quartile" in settings.schemes:
            ids = quartile_ids(scores, tensors["pca8_quartile.edges"])
            centre = quartile_centres(ids, tensors["pca8_quartile.centres"])
            out["pca8_quartile"][0][i0:i1] = ids
            out["pca8_quartile"][1][i0:i1] = np.sqrt(((scores - centre) ** 2).sum(axis=1))
    return out


def n_clusters(scheme: str, settings: FitSettings) -> int:
    """Return the number of cluster ids a scheme can emit."""
    return {"mean_vq64": settings.mean_vq_k, "pca8_vq256": settings.pca_vq_k,
            "pca8_quartile": 4**settings.pca_components}[scheme]


def permute_labels(labels: np.ndarray, seed: int, lag: int, scheme: str, split: str) -> np.ndarray:
    """Return the random control: `labels` permuted across samples (same size histogram)."""
    rng = np.random.default_rng([seed, lag, SCHEMES.index(scheme), SPLITS.index(split), 7])
    return rng.permutation(np.asarray(labels))


def fit_and_assign(
    x: np.ndarray, split_rows: dict[str, np.ndarray], lag: int, settings: FitSettings, timings: dict | None = None
) -> tuple[dict[str, np.ndarray], dict, dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]]:
    """Return (tensors, info, {scheme: {split: (ids, distance, random ids)}}) for one lag.

    Fits see `split_rows["train"]` only; every split (train included) is then assigned
    with the fitted arrays, and its random control permutes its own ids. Wall-clock
    seconds per step go to `timings` (never into `info`, which is saved in a DVC output).
    """
    tensors, info = fit_lag(x, split_rows["train"], lag, settings, timings)
    # One assignment pass over the union of the splits: a scattered split (the held-out
    # utterances) alone would make every block span mostly other rows.
    names = list(split_rows)
    all_rows = np.concatenate([np.asarray(split_rows[s], dtype=np.int64) for s in names])
    order = np.argsort(all_rows, kind="stable")
    clock = time.perf_counter()
    assigned = assign(x, all_rows[order], lag, tensors, settings)
    if timings is not None:
        timings["assign"] = round(time.perf_counter() - clock, 3)
    where = np.empty(all_rows.size, dtype=np.int64)
    where[order] = np.arange(all_rows.size)  # position of each split row in the sorted union
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {s: {} for s in settings.schemes}
    start = 0
    for split in names:
        pos = where[start : start + len(split_rows[split])]
        start += len(split_rows[split])
        for scheme, (ids, dist) in assigned.items():
            out[scheme][split] = (ids[pos], dist[pos], permute_labels(ids[pos], settings.seed, lag, scheme, split))
    return tensors, info, out
