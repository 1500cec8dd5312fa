"""Context windows of the concatenated latents, computed block by block, never materialised.

A target row r (a global row into `x`) with lag L has its context end at e = r − L and
spans rows e − W + 1 … e, oldest first. The frames table keeps only
rows whose context lies inside their own utterance, so nothing here checks utterance
bounds. A (N, W·D) window copy would be W times the latents (16 GB for 1 M Mimi frames),
so window means and PCA scores are sums of W shifted *contiguous* slices of one block of
`x` (or of its per-frame projections): row gathers cost ~3× a contiguous copy here, and
`np.take` on a strided sliding-window view silently copies every window.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Rows of x per block: temporaries stay a few MB, below glibc's mmap threshold, so
# blocks reuse heap pages instead of faulting fresh ones in (~7 s/GB on a cold VM).
BLOCK_ROWS = 4096


def context_rows(rows: np.ndarray, lag: int, window: int) -> np.ndarray:
    """Return the (n, W) global rows of each target's context, oldest first."""
    end = np.asarray(rows, dtype=np.int64) - int(lag)  # (n,)
    return end[:, None] + np.arange(-int(window) + 1, 1, dtype=np.int64)[None, :]  # (n, W)


def gather_windows(x: np.ndarray, rows: np.ndarray, lag: int, window: int) -> np.ndarray:
    """Return the flattened contexts (n, W·D) float32 of a few targets (a fit subsample)."""
    idx = context_rows(rows, lag, window)  # (n, W)
    out = np.empty((idx.shape[0], window, x.shape[1]), dtype=np.float32)  # (n, W, D)
    for k in range(window):
        out[:, k] = x[idx[:, k]]
    return out.reshape(idx.shape[0], window * x.shape[1])  # (n, W·D)


def gather_window_means(x: np.ndarray, rows: np.ndarray, lag: int, window: int) -> np.ndarray:
    """Return the context means (n, D) float32 of a few targets (a fit subsample)."""
    end = np.asarray(rows, dtype=np.int64) - int(lag)
    acc = x[end].astype(np.float32, copy=True)
    for k in range(1, window):
        acc += x[end - k]
    acc /= window
    return acc


def iter_blocks(rows: np.ndarray, reach: int, block: int = BLOCK_ROWS) -> Iterator[tuple[int, int, int, int]]:
    """Yield (i0, i1, lo, hi): targets rows[i0:i1] read only x[lo:hi].

    `rows` must be sorted ascending; `reach` is how many rows before a target its
    computation needs (W − 1 + max lag for contexts, 1 for Δx). Each block spans at most
    `block` target rows of x, so gaps between selected rows cost at most one pass over x.
    """
    rows = np.asarray(rows)
    if rows.size and np.any(np.diff(rows) < 0):
        raise ValueError("rows must be sorted ascending")
    i0 = 0
    n = rows.size
    while i0 < n:
        i1 = int(np.searchsorted(rows, rows[i0] + block, side="left"))
        i1 = max(i1, i0 + 1)
        lo = int(rows[i0]) - int(reach)
        if lo < 0:
            raise ValueError(f"row {int(rows[i0])} has no {reach} rows of history in x")
        yield i0, i1, lo, int(rows[i1 - 1]) + 1
        i0 = i1


def rolling_sum(block: np.ndarray, window: int) -> np.ndarray:
    """Return R with R[j] = block[j] + … + block[j + W − 1] (len(block) − W + 1 rows).

    Sums of doubling length (1, 2, 4, …) combined by the bits of W: ~log2(W) + popcount(W)
    adds instead of W − 1. Shifted adds only, never a cumulative sum: a NaN or huge value
    in one row only touches the windows that contain it (the leakage test relies on this).
    """
    m = block.shape[0] - window + 1
    out = None
    power, length, offset, w = np.asarray(block, dtype=np.float32), 1, 0, int(window)
    while w:
        if w & 1:
            part = power[offset : offset + m]
            if out is None:
                out = np.array(part, dtype=np.float32, copy=True)
            else:
                out += part
            offset += length
        w >>= 1
        if w:
            power = power[:-length] + power[length:]  # sums of 2·length consecutive rows
            length *= 2
    return out


def block_window_means(
    x: np.ndarray, rows: np.ndarray, lo: int, hi: int, lags: list[int] | tuple[int, ...], window: int
) -> dict[int, np.ndarray]:
    """Return {lag: (n, D) context means} for targets `rows` inside block x[lo:hi]."""
    sums = rolling_sum(x[lo:hi], window)  # (hi − lo − W + 1, D): window ending at lo + W − 1 + j
    out = {}
    for lag in lags:
        j = np.asarray(rows, dtype=np.int64) - int(lag) - lo - (window - 1)
        out[int(lag)] = sums[j] / np.float32(window)  # (n, D)
    return out


def block_window_scores(
    projected: np.ndarray, rows: np.ndarray, lo: int, lag: int, window: int, offset: np.ndarray
) -> np.ndarray:
    """Return PCA scores (n, k) of the contexts of `rows` from per-frame projections.

    `projected` (hi − lo, W, k) holds x[lo:hi] @ V_jᵀ for each window slot j, where the
    components V (k, W·D) reshape to (k, W, D) with slot 0 the oldest frame; a flattened
    window's score is Σ_j projected[e − W + 1 + j, j] − offset (offset = mean · Vᵀ).
    """
    m = projected.shape[0] - window + 1
    acc = np.array(projected[0:m, 0], dtype=np.float32, copy=True)  # (m, k)
    for j in range(1, window):
        acc += projected[j : j + m, j]
    sel = np.asarray(rows, dtype=np.int64) - int(lag) - lo - (window - 1)
    return acc[sel] - offset  # (n, k)
