"""Per-group sums of the normalised target Δx, accumulated in one pass over a split.

A grouped sum of a (n, D) block is torch's `index_add_` into a zeroed per-block buffer
(16 k × 512 float32 rows: 4.9–6.7 ms on this CPU, against 11.5–30.5 ms for the scipy CSR
one-hot product used before and 53–129 ms for sort + reduceat, for 1 k–20 k groups). It adds
each group's rows in row order, as the CSR product did, so the sums are bit-identical to it
(tests/unit/phase0/test_phase0_cluster_stats.py). The number of groupings per sample is what
costs. Per scheme there are four:

- atoms (speaker, cluster, slice flags): every VR of every slice and speaker, and the
  train cluster means, are sums of atoms (float32: ~200 k atoms × 512 at full scale)
- (cluster, flags) per-dim Σy²: the Gaussian entropies
- (cluster, flags) of the random control's permuted ids (sums, Σ||y||², per-dim Σy²)
- (confidence band, cluster): the confidence curve (bands of distance rank)

Only samples in effective clusters (`cmap` >= 0) enter any group; excluded samples are
only counted, per slice flag, so excluded mass is exact for every split and slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from audioprobe.phase0.target import iter_targets

N_FLAGS = 4  # flag = 2·is_high_energy + is_medial
# Larger blocks than the context passes: a block touches up to (bands × clusters) output
# rows per scheme, so small blocks spend their time updating accumulators, not reading y.
METRIC_BLOCK_ROWS = 16384


def group_sum_into(acc: np.ndarray, keys: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None) -> None:
    """acc[g] += Σ_i y[rows[i]] over i with keys[i] = g (rows default: all of y, in order).

    Only the groups present in `keys` are touched; `rows` selects from y (one block-sized copy
    unless it is every row in order).
    """
    if keys.size == 0:
        return
    if rows is not None and len(rows) == y.shape[0] and np.array_equal(rows, np.arange(y.shape[0])):
        rows = None  # every row, in order: no copy needed
    sel = np.ascontiguousarray(y if rows is None else y[np.asarray(rows)])
    uniq, inv = np.unique(keys, return_inverse=True)
    block = torch.zeros((uniq.size, sel.shape[1]), dtype=torch.from_numpy(sel[:0]).dtype)
    block.index_add_(0, torch.from_numpy(inv.astype(np.int64, copy=False)), torch.from_numpy(sel))
    # acc[uniq] += block, in place (each group once: the same additions, no gathered copy)
    torch.from_numpy(acc).index_add_(0, torch.from_numpy(uniq.astype(np.int64, copy=False)),
                                     block.to(torch.from_numpy(acc[:0]).dtype))


def group_sum_f64(acc: np.ndarray, keys: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None,
                  chunk: int = 16384) -> None:
    """group_sum_into with float64 products, casting `chunk` selected rows of y at a time.

    For re-aggregating float32 atom sums: hundreds of atoms per group would otherwise
    be summed in float32, and a whole-array cast would double the atoms' memory.
    """
    sel = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
    for a in range(0, sel.size, chunk):
        group_sum_into(acc, keys[a : a + chunk], y[sel[a : a + chunk]].astype(np.float64))


@dataclass
class SchemeInput:
    """One scheme's assignment of a split's samples (all arrays (n,), aligned to the split rows)."""

    name: str
    labels: np.ndarray  # cluster ids in [0, K)
    random_labels: np.ndarray  # the random control's permuted ids
    cmap: np.ndarray  # (K,) int: compact effective-cluster index, −1 = excluded
    n_eff: int
    bands: np.ndarray | None = None  # confidence band of included samples (−1 = excluded)
    n_bands: int = 0


@dataclass
class SchemeStats:
    """Accumulated group statistics of one scheme on one split."""

    n_eff: int
    atom_keys: np.ndarray  # (G,) int64: (speaker·n_eff + cluster)·4 + flag
    atom_counts: np.ndarray  # (G,)
    atom_sums: np.ndarray  # (G, D) float32
    atom_sq: np.ndarray  # (G,) Σ||y||²
    cf_sq_dims: np.ndarray  # (n_eff·4, D) Σ y² per dim
    random_counts: np.ndarray  # (n_eff·4,)
    random_sums: np.ndarray  # (n_eff·4, D)
    random_sq: np.ndarray  # (n_eff·4,)
    random_sq_dims: np.ndarray  # (n_eff·4, D) Σ y² per dim under the permuted ids
    excluded: np.ndarray  # (4,) excluded samples per flag
    totals: np.ndarray  # (4,) all samples per flag
    band_counts: np.ndarray | None = None  # (B·n_eff,)
    band_sums: np.ndarray | None = None  # (B·n_eff, D)
    band_sq: np.ndarray | None = None  # (B·n_eff,)
    n_bands: int = 0
    extra: dict = field(default_factory=dict)


def accumulate_split(
    x: np.ndarray,
    rows: np.ndarray,
    flags: np.ndarray,
    speakers: np.ndarray,
    schemes: list[SchemeInput],
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    block: int = METRIC_BLOCK_ROWS,
) -> dict[str, SchemeStats]:
    """Return {scheme: SchemeStats} for one split in one pass over its normalised Δx.

    `rows` must be sorted ascending; flags, speakers (int codes) and every scheme array
    are aligned to it.
    """
    rows = np.asarray(rows, dtype=np.int64)
    flags = np.asarray(flags, dtype=np.int64)
    speakers = np.asarray(speakers, dtype=np.int64)
    d = x.shape[1]
    state = {}
    for s in schemes:
        c = s.cmap[s.labels]
        c_rand = s.cmap[s.random_labels]
        inc = c >= 0
        if not np.array_equal(inc.sum(), (c_rand >= 0).sum()):
            raise AssertionError(f"{s.name}: random control changed the included mass")
        atom = np.where(inc, (speakers * s.n_eff + c) * N_FLAGS + flags, -1)
        atom_keys, atom_idx = np.unique(atom[inc], return_inverse=True)
        atom_of = np.full(rows.size, -1, dtype=np.int64)
        atom_of[inc] = atom_idx
        g = atom_keys.size
        st = SchemeStats(
            n_eff=s.n_eff,
            atom_keys=atom_keys,
            atom_counts=np.bincount(atom_idx, minlength=g).astype(np.float64),
            atom_sums=np.zeros((g, d), dtype=np.float32),
            atom_sq=np.zeros(g),
            cf_sq_dims=np.zeros((s.n_eff * N_FLAGS, d)),
            random_counts=np.zeros(s.n_eff * N_FLAGS),
            random_sums=np.zeros((s.n_eff * N_FLAGS, d)),
            random_sq=np.zeros(s.n_eff * N_FLAGS),
            random_sq_dims=np.zeros((s.n_eff * N_FLAGS, d)),
            excluded=np.bincount(flags[~inc], minlength=N_FLAGS).astype(np.int64),
            totals=np.bincount(flags, minlength=N_FLAGS).astype(np.int64),
        )
        cf = np.where(inc, c * N_FLAGS + flags, -1)
        rf = np.where(c_rand >= 0, c_rand * N_FLAGS + flags, -1)
        st.random_counts += np.bincount(rf[rf >= 0], minlength=s.n_eff * N_FLAGS)
        band = None
        if s.bands is not None and s.n_bands > 0:
            band = np.where(inc & (s.bands >= 0), s.bands.astype(np.int64) * s.n_eff + c, -1)
            st.n_bands = s.n_bands
            nb = s.n_bands * s.n_eff
            st.band_counts = np.bincount(band[band >= 0], minlength=nb).astype(np.float64)
            st.band_sums = np.zeros((nb, d))
            st.band_sq = np.zeros(nb)
        state[s.name] = (st, atom_of, cf, rf, band)

    for i0, i1, y in iter_targets(x, rows, norm_mean, norm_std, block):
        ysq = np.einsum("nd,nd->n", y, y, dtype=np.float64)
        y2 = None
        for st, atom_of, cf, rf, band in state.values():
            a = atom_of[i0:i1]
            m = np.flatnonzero(a >= 0)
            group_sum_into(st.atom_sums, a[m], y, m)
            st.atom_sq += np.bincount(a[m], weights=ysq[m], minlength=st.atom_sq.size)
            if y2 is None:
                y2 = y * y
            group_sum_into(st.cf_sq_dims, cf[i0:i1][m], y2, m)
            r = rf[i0:i1]
            mr = np.flatnonzero(r >= 0)
            group_sum_into(st.random_sums, r[mr], y, mr)
            st.random_sq += np.bincount(r[mr], weights=ysq[mr], minlength=st.random_sq.size)
            group_sum_into(st.random_sq_dims, r[mr], y2, mr)
            if band is not None:
                b = band[i0:i1]
                mb = np.flatnonzero(b >= 0)
                group_sum_into(st.band_sums, b[mb], y, mb)
                st.band_sq += np.bincount(b[mb], weights=ysq[mb], minlength=st.band_sq.size)
    return {name: v[0] for name, v in state.items()}
