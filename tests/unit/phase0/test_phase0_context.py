"""Context indexing on hand-built latents where frame i equals i (every lag, across utterances)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audioprobe.phase0.conditioning import _projection_matrix
from audioprobe.phase0.context import (
    block_window_means,
    block_window_scores,
    context_rows,
    gather_window_means,
    gather_windows,
    iter_blocks,
)
from audioprobe.phase0.frames import build_frames
from audioprobe.phase0.target import fit_delta_norm, iter_targets

WINDOW = 8
LAGS = [1, 2, 4]
LENGTHS = [15, 11, 40, 12, 27]  # utterance 1 (11 frames) is too short for any target


def hand_latents(dim: int = 3) -> tuple[np.ndarray, pl.DataFrame]:
    """x[i, d] = i + 1000·d, and the frames table helper-3's builder makes for it."""
    n = sum(LENGTHS)
    x = (np.arange(n)[:, None] + 1000.0 * np.arange(dim)[None, :]).astype(np.float32)  # (N, D)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)[:-1]])
    index = pl.DataFrame({
        "utterance_id": [f"u{i}" for i in range(len(LENGTHS))],
        "speaker_id": [f"s{i % 2}" for i in range(len(LENGTHS))],
        "n_frames": LENGTHS,
        "offset": offsets,
    })
    frames, _ = build_frames(index, np.arange(n, dtype=np.float32), {f"u{i}": "train" for i in range(5)},
                             WINDOW, LAGS)
    return x, frames


def test_frames_keep_only_targets_with_a_full_context_inside_their_utterance():
    x, frames = hand_latents()
    rows = frames["row"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)])
    utt = np.searchsorted(offsets, rows, side="right") - 1
    for lag in LAGS:
        ctx = context_rows(rows, lag, WINDOW)
        assert ctx.shape == (rows.size, WINDOW)
        # oldest first, contiguous, ending at t − L, all inside the target's own utterance
        np.testing.assert_array_equal(ctx[:, -1], rows - lag)
        np.testing.assert_array_equal(np.diff(ctx, axis=1), 1)
        assert (ctx[:, 0] >= offsets[utt]).all() and (ctx[:, -1] < offsets[utt + 1]).all()
    assert 1 not in set(utt.tolist())  # the 11-frame utterance has no target


@pytest.mark.parametrize("lag", LAGS)
@pytest.mark.parametrize("block", [1, 7, 4096])
def test_window_means_and_scores_equal_the_explicit_windows(lag, block):
    x, frames = hand_latents()
    rows = frames["row"].to_numpy().astype(np.int64)
    # frame i equals i: the context mean is the mean of i − L − W + 1 … i − L
    expect_mean = rows - lag - (WINDOW - 1) / 2.0
    means = gather_window_means(x, rows, lag, WINDOW)
    np.testing.assert_allclose(means[:, 0], expect_mean, atol=1e-4)
    np.testing.assert_allclose(means[:, 2], expect_mean + 2000.0, atol=1e-3)
    windows = gather_windows(x, rows, lag, WINDOW)  # (n, W·D), slot-major
    np.testing.assert_array_equal(windows.reshape(rows.size, WINDOW, 3)[:, :, 0], context_rows(rows, lag, WINDOW))
    rng = np.random.default_rng(0)
    comp = rng.standard_normal((4, WINDOW * 3)).astype(np.float32)
    mean = rng.standard_normal(WINDOW * 3).astype(np.float32)
    proj = _projection_matrix(comp, WINDOW, 3)
    offset = (mean @ comp.T).astype(np.float32)
    got_means = np.empty_like(means)
    got_scores = np.empty((rows.size, 4), np.float32)
    spans = []
    for i0, i1, lo, hi in iter_blocks(rows, WINDOW - 1 + max(LAGS), block):
        spans.append((i0, i1))
        got_means[i0:i1] = block_window_means(x, rows[i0:i1], lo, hi, [lag], WINDOW)[lag]
        projected = (x[lo:hi] @ proj).reshape(hi - lo, WINDOW, 4)
        got_scores[i0:i1] = block_window_scores(projected, rows[i0:i1], lo, lag, WINDOW, offset)
    assert spans[0][0] == 0 and spans[-1][1] == rows.size
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    np.testing.assert_allclose(got_means, means, rtol=1e-6)
    expect_scores = (windows.astype(np.float64) - mean) @ comp.T.astype(np.float64)
    np.testing.assert_allclose(got_scores, expect_scores, rtol=1e-4, atol=1e-2)


def test_delta_target_is_one_per_frame_and_normalisation_uses_train_rows_only():
    x, frames = hand_latents()
    rows = frames["row"].to_numpy().astype(np.int64)
    x[:, 1] *= 3.0  # Δ of dim 1 is 3
    mean, std = fit_delta_norm(x, rows)
    np.testing.assert_allclose(mean, [1.0, 3.0, 1.0])
    np.testing.assert_allclose(std, 1e-6)  # constant Δ: σ floored at 1e-6
    got = np.concatenate([y for _, _, y in iter_targets(x, rows, np.zeros(3), np.ones(3), block=5)])
    np.testing.assert_allclose(got, np.tile([1.0, 3.0, 1.0], (rows.size, 1)))


def test_unsorted_rows_and_missing_history_are_rejected():
    with pytest.raises(ValueError, match="sorted"):
        list(iter_blocks(np.array([20, 10]), 3))
    with pytest.raises(ValueError, match="history"):
        list(iter_blocks(np.array([2, 10]), 3))
