"""Frames at a common frame rate: mean pooling over whole groups of native frames.

Every representation is compared at its native rate and at one common rate
(`phase0.tier1.common_rate`, 12.5 Hz = Mimi's). A native rate R is brought to the
common rate C by averaging each run of r = R / C consecutive frames; r must be a whole
number (EnCodec 75 Hz → 6, mel 50 Hz → 4, Mimi 12.5 Hz → 1 = unchanged), so no frame
is interpolated or split between two outputs.

The last group of an utterance may hold fewer than r frames: it is KEPT and averaged
over its real frames only, so T frames become ceil(T / r). That is the frame count the
encoder interface gives an encoder running at the common rate on the same samples
(ceil(ceil(S / hop) / r) = ceil(S / (hop·r))), so Mimi at 12.5 Hz and EnCodec pooled
from 75 Hz have the same number of frames per utterance.

Per-frame scalars (energy, an RMS) pool with `reduce="rms"`: sqrt of the mean of squares,
which is the RMS over the group's samples when its frames cover equal sample counts.
Pooling is per utterance: never across an utterance boundary.
"""

from __future__ import annotations

import numpy as np

from audioprobe.runtime.errors import ParamsError

RATIO_TOL = 1e-6


def pool_factor(native_rate: float, common_rate: float, param: str = "phase0.tier1.common_rate") -> int:
    """Return r = native_rate / common_rate, a whole number >= 1 (within 1e-6), else ParamsError naming `param`."""
    ratio = float(native_rate) / float(common_rate) if common_rate > 0 else float("nan")
    r = round(ratio) if np.isfinite(ratio) else 0
    if r < 1 or abs(ratio - r) > RATIO_TOL:
        raise ParamsError(
            f"params.yaml: {param} = {common_rate:g} Hz must divide the native rate {native_rate:g} Hz "
            f"into a whole number >= 1 of frames (got {ratio:.6g}); choose a common rate R / n"
        )
    return int(r)


def _pool(x: np.ndarray, starts: np.ndarray, n_rows: int, reduce: str) -> np.ndarray:
    """Return per-group means of rows of x (groups = consecutive runs starting at `starts`)."""
    if reduce not in ("mean", "rms"):
        raise ValueError(f"reduce must be 'mean' or 'rms', got {reduce!r}")
    if starts.size == 0:
        return np.zeros((0, *x.shape[1:]), dtype=x.dtype)
    counts = np.diff(np.append(starts, n_rows))  # (G,) real frames per group
    v = x.astype(np.float64)
    if reduce == "rms":
        v = np.square(v)
    sums = np.add.reduceat(v, starts, axis=0)  # (G, ...) — starts strictly increase
    mean = sums / counts.reshape(-1, *([1] * (x.ndim - 1)))
    return (np.sqrt(mean) if reduce == "rms" else mean).astype(x.dtype)


def to_common_rate(
    x: np.ndarray, native_rate: float, common_rate: float, reduce: str = "mean",
    param: str = "phase0.tier1.common_rate",
) -> np.ndarray:
    """Return one utterance's frames [ceil(T / r), ...] pooled from x [T, ...] (r = native / common).

    x is [T, D] (latents) or [T] (per-frame scalars such as energy); the last group may be
    partial and is averaged over its real frames. reduce: "mean" or "rms".
    """
    r = pool_factor(native_rate, common_rate, param)
    if r == 1:
        return x
    return _pool(x, np.arange(0, x.shape[0], r), x.shape[0], reduce)


def pool_utterances(
    x: np.ndarray, offsets: np.ndarray, native_rate: float, common_rate: float, reduce: str = "mean",
    param: str = "phase0.tier1.common_rate",
) -> tuple[np.ndarray, np.ndarray]:
    """Return (pooled rows [N', ...], offsets' [U + 1]) of concatenated utterances x [N, ...].

    Utterance u owns rows offsets[u]:offsets[u + 1] (the latents.zarr layout); each is
    pooled on its own, exactly as to_common_rate, so U stays the same and no group
    crosses an utterance boundary.
    """
    r = pool_factor(native_rate, common_rate, param)
    offsets = np.asarray(offsets, dtype=np.int64)
    if r == 1:
        return x, offsets
    n = np.diff(offsets)  # (U,)
    m = -(-n // r)  # (U,) ceil(T_u / r)
    new_offsets = np.concatenate([[0], np.cumsum(m)]).astype(np.int64)
    # Group g of utterance u starts at offsets[u] + r·(g − new_offsets[u]).
    utt = np.repeat(np.arange(n.size), m)  # (N',)
    starts = offsets[:-1][utt] + r * (np.arange(new_offsets[-1]) - new_offsets[:-1][utt])
    return _pool(x, starts, int(offsets[-1]), reduce), new_offsets
