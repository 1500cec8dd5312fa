"""The phase0 metrics of one lag: VR (both ways), random control, entropy, speakers, slices.

Definitions in the lane README. Effective clusters are those with >= `min_cluster_train_samples`
train-split samples; the same set is applied to every split and slice, and the mass
outside it is reported for each. Two eval VRs are reported: `vr` re-estimates each
cluster's mean on the evaluated samples (the origin's definition, which rewards tiny
clusters; the decision rule uses it) and `vr_train_means` predicts with the train
cluster means (the honest out-of-sample predictor; it can exceed 1). Every quantity
is also computed for the random control (the same ids permuted across the split's
samples), and the entropy reduction is read as its excess over the control's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from audioprobe.metrics.gaussian_entropy import entropy_reduction
from audioprobe.metrics.variance_ratio import variance_ratio, variance_ratio_around
from audioprobe.phase0.cluster_stats import (
    N_FLAGS,
    SchemeInput,
    SchemeStats,
    accumulate_split,
    group_sum_f64,
    group_sum_into,
)
from audioprobe.phase0.frames import SPLITS, read_frames

SLICES = {"all": (0, 1, 2, 3), "high_energy": (2, 3), "medial": (1, 3)}


@dataclass(frozen=True)
class MetricSettings:
    """Mirrors params phase0.metrics."""

    min_cluster_train_samples: int = 100
    min_speaker_samples: int = 10
    excluded_mass_flag: float = 0.10
    medial_pos_frac: tuple[float, float] = (0.17, 0.83)
    confidence_keep_pct: tuple[float, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


@dataclass
class SplitData:
    """A split's target rows (sorted ascending) and per-sample attributes aligned to them."""

    rows: np.ndarray
    flags: np.ndarray  # 2·is_high_energy + is_medial
    speakers: np.ndarray  # int codes into `speaker_names`
    speaker_names: list[str]


@dataclass
class Assignment:
    """One scheme's ids on one split (aligned to SplitData.rows)."""

    labels: np.ndarray
    distance: np.ndarray
    random_labels: np.ndarray


@dataclass
class LagResult:
    """Nested metrics {scheme: {...}}, plus tables for plots."""

    metrics: dict
    curve: list[dict] = field(default_factory=list)
    speakers: list[dict] = field(default_factory=list)
    clusters: dict = field(default_factory=dict)  # scheme -> arrays for diagnostics


def slice_flags(is_high_energy: np.ndarray, pos_frac: np.ndarray, medial: tuple[float, float]) -> np.ndarray:
    """Return flag = 2·is_high_energy + is_medial (medial: pos_frac in [lo, hi], inclusive)."""
    pos = np.asarray(pos_frac, dtype=np.float64)
    is_medial = (pos >= medial[0]) & (pos <= medial[1])
    return (2 * np.asarray(is_high_energy, dtype=np.int64) + is_medial).astype(np.int8)


def split_data(frames: pl.DataFrame, medial: tuple[float, float]) -> dict[str, SplitData]:
    """Return {split: SplitData} with rows sorted ascending and split-local speaker codes."""
    out = {}
    for split in SPLITS:
        f = frames.filter(pl.col("split") == split).sort("row")
        if f.height == 0:
            continue
        names, codes = np.unique(f["speaker_id"].cast(pl.String).to_numpy(), return_inverse=True)
        flags = slice_flags(f["is_high_energy"].to_numpy(), f["pos_frac"].to_numpy(), medial)
        out[split] = SplitData(f["row"].to_numpy().astype(np.int64), flags, codes, [str(s) for s in names])
    return out


def read_split_data(frames: str | Path, medial: tuple[float, float]) -> dict[str, SplitData]:
    """split_data of the frame index at `frames` (phase0_frames' parquet)."""
    return split_data(read_frames(frames, ("row", "speaker_id", "split", "pos_frac", "is_high_energy")), medial)


def effective_map(train_labels: np.ndarray, k: int, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (cmap (K,) compact index of clusters with >= min_count train samples else −1, train counts)."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=k)
    eff = counts >= min_count
    cmap = np.full(k, -1, dtype=np.int64)
    cmap[eff] = np.arange(int(eff.sum()))
    return cmap, counts


def confidence_bands(
    distance: np.ndarray, included: np.ndarray, keep_pct: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (band per sample, kept count per q, distance threshold per q).

    Included samples are ranked by assignment distance (stable, smallest = most
    confident); band j holds ranks in [n_keep[j−1], n_keep[j]), so the top q_j % set is
    bands <= j: nested by construction. Excluded samples get band −1.
    """
    pct = np.asarray(keep_pct, dtype=np.float64)
    if pct.size == 0 or np.any(np.diff(pct) <= 0) or pct[0] <= 0 or pct[-1] != 100:
        raise ValueError(f"confidence keep percentages must rise strictly to 100, got {list(keep_pct)}")
    idx = np.flatnonzero(included)
    n_inc = idx.size
    n_keep = np.ceil(pct / 100.0 * n_inc).astype(np.int64)
    order = np.argsort(np.asarray(distance)[idx], kind="stable")
    rank = np.empty(n_inc, dtype=np.int64)
    rank[order] = np.arange(n_inc)
    bands = np.full(np.asarray(distance).shape[0], -1, dtype=np.int16)
    bands[idx] = np.searchsorted(n_keep, rank, side="right")
    sorted_d = np.asarray(distance, dtype=np.float64)[idx][order]
    thresholds = np.array([sorted_d[m - 1] if m > 0 else np.nan for m in n_keep])
    return bands, n_keep, thresholds


def _decode_atoms(st: SchemeStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flag = st.atom_keys % N_FLAGS
    pair = st.atom_keys // N_FLAGS
    return pair // st.n_eff, pair % st.n_eff, flag  # speaker, cluster, flag


def cluster_flag_stats(st: SchemeStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (counts (Ke, 4), sums (Ke, 4, D) float64, Σ||y||² (Ke, 4)) summed over speakers."""
    _, clu, flag = _decode_atoms(st)
    key = clu * N_FLAGS + flag
    g = st.n_eff * N_FLAGS
    d = st.atom_sums.shape[1]
    sums = np.zeros((g, d))
    group_sum_f64(sums, key, st.atom_sums)
    counts = np.bincount(key, weights=st.atom_counts, minlength=g)
    sq = np.bincount(key, weights=st.atom_sq, minlength=g)
    return counts.reshape(st.n_eff, N_FLAGS), sums.reshape(st.n_eff, N_FLAGS, d), sq.reshape(st.n_eff, N_FLAGS)


def slice_stats(
    st: SchemeStats, flags: tuple[int, ...], cf: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return per-cluster (counts, sums (Ke, D), Σ||y||², Σy² per dim (Ke, D)) over one slice.

    `cf` = cluster_flag_stats(st), passed in when several slices are read.
    """
    counts, sums, sq = cluster_flag_stats(st) if cf is None else cf
    f = list(flags)
    d = st.atom_sums.shape[1]
    sq_dims = st.cf_sq_dims.reshape(st.n_eff, N_FLAGS, d)[:, f].sum(axis=1)
    return counts[:, f].sum(axis=1), sums[:, f].sum(axis=1), sq[:, f].sum(axis=1), sq_dims


def random_slice_stats(
    st: SchemeStats, flags: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the random control's per-cluster (counts, sums (Ke, D), Σ||y||², Σy² per dim) over a slice."""
    d = st.random_sums.shape[1]
    f = list(flags)
    return (
        st.random_counts.reshape(st.n_eff, N_FLAGS)[:, f].sum(axis=1),
        st.random_sums.reshape(st.n_eff, N_FLAGS, d)[:, f].sum(axis=1),
        st.random_sq.reshape(st.n_eff, N_FLAGS)[:, f].sum(axis=1),
        st.random_sq_dims.reshape(st.n_eff, N_FLAGS, d)[:, f].sum(axis=1),
    )


def speaker_vrs(st: SchemeStats, train_means: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (speaker codes, n, vr, vr_train_means) per speaker over the slice `all`."""
    spk, clu, _ = _decode_atoms(st)
    pair = st.atom_keys // N_FLAGS
    pairs, pinv = np.unique(pair, return_inverse=True)
    d = st.atom_sums.shape[1]
    p_n = np.bincount(pinv, weights=st.atom_counts, minlength=pairs.size)
    p_sq = np.bincount(pinv, weights=st.atom_sq, minlength=pairs.size)
    p_sum = np.zeros((pairs.size, d))
    group_sum_f64(p_sum, pinv, st.atom_sums)
    p_spk, p_clu = pairs // st.n_eff, pairs % st.n_eff
    speakers, sinv = np.unique(p_spk, return_inverse=True)
    s_n = np.bincount(sinv, weights=p_n)
    s_sq = np.bincount(sinv, weights=p_sq)
    s_sum = np.zeros((speakers.size, d))
    group_sum_into(s_sum, sinv, p_sum)
    total = s_sq - np.einsum("sd,sd->s", s_sum, s_sum) / np.maximum(s_n, 1)
    between = np.bincount(sinv, weights=np.einsum("pd,pd->p", p_sum, p_sum) / p_n)
    mu = train_means[p_clu]  # (P, D)
    around = np.bincount(sinv, weights=-2.0 * np.einsum("pd,pd->p", mu, p_sum) + p_n * np.einsum("pd,pd->p", mu, mu))
    with np.errstate(divide="ignore", invalid="ignore"):
        vr = np.where(total > 0, np.maximum(s_sq - between, 0) / total, np.nan)
        vr_tm = np.where(total > 0, np.maximum(s_sq + around, 0) / total, np.nan)
    return speakers, s_n, vr, vr_tm


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _mean_std(v: np.ndarray) -> tuple[float | None, float | None]:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def evaluate_lag(
    x: np.ndarray,
    splits: dict[str, SplitData],
    assignments: dict[str, dict[str, Assignment]],
    n_clusters: dict[str, int],
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    settings: MetricSettings,
    lag: int = 1,
    timings: dict | None = None,
) -> LagResult:
    """Return every phase0 metric of one lag for every scheme × split × slice.

    `assignments[scheme][split]`; splits must include "train" (it defines the effective
    clusters and the train cluster means). Wall-clock seconds go to `timings` when given:
    `stats` (the pass over Δx), `entropy` (entropy reductions), `vr` (everything else:
    VRs, speakers, curves, diagnostics).
    """
    clock = time.perf_counter()
    t_entropy = 0.0
    schemes = list(assignments)
    prep: dict[str, dict[str, SchemeInput]] = {name: {} for name in schemes}
    result = LagResult(metrics={name: {} for name in schemes})
    band_info: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for name in schemes:
        train_lab = assignments[name]["train"].labels
        cmap, counts = effective_map(train_lab, n_clusters[name], settings.min_cluster_train_samples)
        n_eff = int((cmap >= 0).sum())
        rnd_counts = np.bincount(assignments[name]["train"].random_labels, minlength=n_clusters[name])
        if not np.array_equal(rnd_counts, counts):
            raise AssertionError(f"{name}: random control does not keep the train size histogram")
        m = result.metrics[name]
        m["k"] = int(n_clusters[name])
        m["k_effective"] = n_eff
        m["k_nonempty"] = int((counts > 0).sum())
        result.clusters[name] = {"train_counts": counts}
        for split, a in assignments[name].items():
            inc = cmap[a.labels] >= 0
            bands, n_keep, thr = confidence_bands(a.distance, inc, settings.confidence_keep_pct)
            band_info[(name, split)] = (n_keep, thr)
            prep[name][split] = SchemeInput(
                name, a.labels, a.random_labels, cmap, n_eff, bands, len(settings.confidence_keep_pct))

    stats: dict[str, dict[str, SchemeStats]] = {name: {} for name in schemes}
    for split, sd in splits.items():
        acc = accumulate_split(x, sd.rows, sd.flags, sd.speakers, [prep[n][split] for n in schemes],
                               norm_mean, norm_std)
        for name in schemes:
            stats[name][split] = acc[name]
    if timings is not None:
        timings["stats"] = time.perf_counter() - clock
    clock = time.perf_counter()

    for name in schemes:
        st_train = stats[name]["train"]
        cf_train = cluster_flag_stats(st_train)
        tc, ts, _, tsq = slice_stats(st_train, SLICES["all"], cf_train)
        train_means = ts / np.maximum(tc, 1)[:, None]  # (Ke, D); every effective cluster has train samples
        rc, rs, _, _ = random_slice_stats(st_train, SLICES["all"])
        random_means = rs / np.maximum(rc, 1)[:, None]
        m = result.metrics[name]
        for split in splits:
            st = stats[name][split]
            cf = cf_train if split == "train" else cluster_flag_stats(st)
            m[split] = {}
            for sl, fl in SLICES.items():
                counts, sums, sq, sq_dims = slice_stats(st, fl, cf)
                n_all = int(st.totals[list(fl)].sum())
                n_exc = int(st.excluded[list(fl)].sum())
                exc = n_exc / n_all if n_all else None
                t_e = time.perf_counter()
                ent = entropy_reduction(counts, sums, sq_dims) if counts.sum() > 0 else None
                rcnt, rsum, rsq, rsq_dims = random_slice_stats(st, fl)
                rent = entropy_reduction(rcnt, rsum, rsq_dims) if rcnt.sum() > 0 else None
                t_entropy += time.perf_counter() - t_e
                gain = (None if ent is None or rent is None
                        else _num(ent["reduction_nats"] - rent["reduction_nats"]))
                row = {
                    "n": n_all,
                    "n_included": n_all - n_exc,
                    "excluded_mass": exc,
                    # An empty slice is flagged too: nothing there can support a pass.
                    "excluded_flag": bool(exc is None or exc > settings.excluded_mass_flag),
                    "vr": _num(variance_ratio(counts, sums, sq)),
                    "vr_train_means": _num(variance_ratio_around(counts, sums, sq, train_means)),
                    "random_vr": _num(variance_ratio(rcnt, rsum, rsq)),
                    "random_vr_train_means": _num(variance_ratio_around(rcnt, rsum, rsq, random_means)),
                    "random_vr_expected": _permutation_null(rcnt),
                    "entropy_h": None if ent is None else _num(ent["h"]),
                    "entropy_h_cond": None if ent is None else _num(ent["h_cond"]),
                    "entropy_reduction": None if ent is None else _num(ent["reduction"]),
                    "entropy_reduction_nats": None if ent is None else _num(ent["reduction_nats"]),
                    "random_entropy_reduction_nats": None if rent is None else _num(rent["reduction_nats"]),
                    # What the clusters add over a control with the same sizes and no structure.
                    "entropy_gain_nats": gain,
                }
                m[split][sl] = row
            spk, s_n, vr, vr_tm = speaker_vrs(st, train_means)
            keep = s_n >= settings.min_speaker_samples
            row = m[split]["all"]
            row["n_speakers"] = int(keep.sum())
            row["speaker_vr_mean"], row["speaker_vr_std"] = _mean_std(vr[keep])
            row["speaker_vr_train_means_mean"], row["speaker_vr_train_means_std"] = _mean_std(vr_tm[keep])
            names = splits[split].speaker_names
            for s_code, n_s, v, vt, k in zip(spk, s_n, vr, vr_tm, keep, strict=True):
                if k:
                    result.speakers.append({"scheme": name, "split": split, "speaker": names[int(s_code)],
                                            "n": int(n_s), "vr": _num(v), "vr_train_means": _num(vt)})
            result.curve.extend(_curve_rows(name, split, st, train_means, *band_info[(name, split)],
                                            settings.confidence_keep_pct))
        for split in splits:
            if split == "train":
                continue
            for sl in SLICES:
                tr, ev = m["train"][sl], m[split][sl]
                for key, out in (("vr", "degradation"), ("vr_train_means", "degradation_train_means")):
                    ev[out] = (None if tr[key] in (None, 0.0) or ev[key] is None
                               else (ev[key] - tr[key]) / tr[key])
        # Diagnostics for plots: per effective cluster, train count, mean per-dim variance,
        # and the 2-D PCA of the cluster mean Δx.
        var = tsq / np.maximum(tc, 1)[:, None] - train_means**2
        diag = result.clusters[name]
        diag["eff_train_counts"] = tc
        diag["eff_variance"] = var.mean(axis=1) if var.size else np.zeros(0)
        diag["eff_mean_pca2"] = _pca2(train_means)
        if "eval" in stats[name]:
            st_eval = stats[name]["eval"]
            diag["eff_eval_counts"] = np.bincount(_decode_atoms(st_eval)[1], weights=st_eval.atom_counts,
                                                  minlength=st_eval.n_eff)
    if timings is not None:
        timings["entropy"] = t_entropy
        timings["vr"] = time.perf_counter() - clock - t_entropy
    return result


def _permutation_null(counts: np.ndarray) -> float | None:
    """Return E[VR] under a random permutation of labels: 1 − (G − 1)/(n − 1), G non-empty groups.

    The random control sits this far below 1 by construction when n is small against G
    (e.g. the embedded corpus), so a reader can tell that gap from a leak.
    """
    n = float(np.sum(counts))
    g = int(np.sum(np.asarray(counts) > 0))
    return None if n < 2 else 1.0 - (g - 1) / (n - 1)


def _pca2(means: np.ndarray) -> np.ndarray:
    """Return (G, 2) coordinates of the rows of `means` on their top-2 principal axes (fixed sign)."""
    if means.shape[0] < 2:
        return np.zeros((means.shape[0], 2))
    c = means - means.mean(axis=0)
    # (D, D) eigh: cheap for thousands of clusters, unlike a full SVD; one thread, since a
    # second OpenBLAS thread made this 512² LAPACK call 20× slower on a busy 2-core box.
    with threadpool_limits(limits=1, user_api="blas"):
        _, vec = np.linalg.eigh(c.T @ c)
    axes = vec[:, ::-1][:, :2]  # (D, 2), largest eigenvalue first
    pivot = np.argmax(np.abs(axes), axis=0)
    axes = axes * np.sign(axes[pivot, np.arange(axes.shape[1])])[None, :]
    coords = c @ axes
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords


def _curve_rows(name, split, st: SchemeStats, train_means, n_keep, thresholds, keep_pct) -> list[dict]:
    """Return the confidence curve: VR of the top-q % most confident included samples."""
    if st.band_counts is None:
        return []
    d = st.band_sums.shape[1]
    c = np.cumsum(st.band_counts.reshape(st.n_bands, st.n_eff), axis=0)
    s = np.cumsum(st.band_sums.reshape(st.n_bands, st.n_eff, d), axis=0)
    q = np.cumsum(st.band_sq.reshape(st.n_bands, st.n_eff), axis=0)
    rows = []
    for j, pct in enumerate(keep_pct):
        rows.append({
            "scheme": name, "split": split, "keep_pct": float(pct), "n_kept": int(n_keep[j]),
            "distance_threshold": _num(float(thresholds[j])),
            "vr": _num(variance_ratio(c[j], s[j], q[j])),
            "vr_train_means": _num(variance_ratio_around(c[j], s[j], q[j], train_means)),
        })
    return rows


