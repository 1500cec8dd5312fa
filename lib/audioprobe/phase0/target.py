"""The phase0 target Δx = x[t] − x[t−1], normalised per dim with train-split statistics."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from audioprobe.phase0.context import BLOCK_ROWS, iter_blocks

# σ floored at 1e-6 so a constant latent dim cannot divide by zero.
STD_FLOOR = 1e-6


def block_deltas(x: np.ndarray, rows: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Return raw Δx (n, D) float32 for sorted `rows` inside block x[lo:hi] (lo <= min(rows) − 1)."""
    j = np.asarray(rows, dtype=np.int64) - lo
    blk = x[lo:hi]
    return np.subtract(blk[j], blk[j - 1], dtype=np.float32)


def fit_delta_norm(x: np.ndarray, train_rows: np.ndarray, block: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean, std) float64 (D,) of Δx over the train-split rows only; std >= 1e-6."""
    rows = np.sort(np.asarray(train_rows, dtype=np.int64))
    if rows.size == 0:
        raise ValueError("no train rows to fit the Δx normalisation on")
    d = x.shape[1]
    s1 = np.zeros(d, dtype=np.float64)
    for i0, i1, lo, hi in iter_blocks(rows, 1, block):
        s1 += block_deltas(x, rows[i0:i1], lo, hi).sum(axis=0, dtype=np.float64)
    mean = s1 / rows.size
    # Second pass around the mean: one-pass E[y²] − E[y]² cancels badly in float64 when
    # |mean| >> std, and Δx of slowly moving dims is exactly that case.
    s2 = np.zeros(d, dtype=np.float64)
    for i0, i1, lo, hi in iter_blocks(rows, 1, block):
        c = block_deltas(x, rows[i0:i1], lo, hi) - mean
        s2 += np.einsum("nd,nd->d", c, c)
    std = np.sqrt(s2 / rows.size)
    return mean, np.maximum(std, STD_FLOOR)


def iter_targets(
    x: np.ndarray, rows: np.ndarray, mean: np.ndarray, std: np.ndarray, block: int = BLOCK_ROWS
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (i0, i1, y): normalised Δx float32 (i1 − i0, D) for sorted `rows[i0:i1]`."""
    mean32 = np.asarray(mean, dtype=np.float32)
    inv32 = (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32)
    for i0, i1, lo, hi in iter_blocks(rows, 1, block):
        y = block_deltas(x, rows[i0:i1], lo, hi)
        y -= mean32
        y *= inv32
        yield i0, i1, y
