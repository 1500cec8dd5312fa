"""Frame index: t range per window/lags, rows, pos_frac, train-only energy threshold; e2e dvc repro."""

from __future__ import annotations


import numpy as np
import polars as pl
import pytest

from audioprobe.runtime.errors import DataError
from audioprobe.phase0.frames import (
    COLUMNS,
    build_frames,
    first_target,
    read_frames,
    read_split_rows,
    split_rows,
    write_frames,
)


def hand_index(n_frames: list[int]) -> pl.DataFrame:
    offsets = np.concatenate([[0], np.cumsum(n_frames)[:-1]])
    return pl.DataFrame({
        "utterance_id": [f"u{i}" for i in range(len(n_frames))],
        "speaker_id": [f"s{i}" for i in range(len(n_frames))],
        "n_frames": n_frames,
        "offset": offsets,
    })


SPLIT = {"u0": "train", "u1": "heldout", "u2": "eval", "u3": "train"}


@pytest.mark.parametrize("window, lags, t0", [(8, [1, 2, 4], 11), (1, [1], 1), (3, [2], 4), (8, [4, 1], 11)])
def test_first_target_has_full_context_at_the_largest_lag(window, lags, t0):
    assert first_target(window, lags) == t0
    for lag in lags:  # context of the first target starts at frame >= 0
        assert t0 - lag - window + 1 >= 0
    assert t0 - max(lags) - window + 1 == 0


def test_rows_t_and_pos_frac_on_hand_built_frames():
    # frame i of the store holds value i: row == global frame index, energy == row
    n_frames = [15, 11, 12, 20]
    index = hand_index(n_frames)
    energy = np.arange(sum(n_frames), dtype=np.float32)
    frames, _ = build_frames(index, energy, SPLIT, window=8, lags=[1, 2, 4])
    per_utt = frames.group_by("utterance_id", maintain_order=True).agg(pl.col("t"))
    assert dict(zip(per_utt["utterance_id"], per_utt["t"].to_list())) == {
        "u0": [11, 12, 13, 14], "u2": [11], "u3": list(range(11, 20)),  # u1 (T=11) has no row
    }
    offsets = dict(zip(index["utterance_id"], index["offset"]))
    n = dict(zip(index["utterance_id"], index["n_frames"]))
    for r in frames.iter_rows(named=True):
        assert r["row"] == offsets[r["utterance_id"]] + r["t"]
        assert r["energy"] == energy[r["row"]]
        assert r["pos_frac"] == pytest.approx(r["t"] / n[r["utterance_id"]])
        assert r["split"] == SPLIT[r["utterance_id"]]
        # every lag's context x[t-L-W+1 .. t-L] stays inside this utterance
        assert r["row"] - 4 - 8 + 1 >= offsets[r["utterance_id"]]
    assert frames.schema["split"] == pl.String and frames.schema["is_high_energy"] == pl.Boolean


def test_high_energy_threshold_is_the_train_median_only():
    index = hand_index([15, 11, 12, 20])
    energy = np.arange(58, dtype=np.float32)
    frames, thr = build_frames(index, energy, SPLIT, 8, [1, 2, 4])
    train = frames.filter(pl.col("split") == "train")["energy"].to_numpy()
    assert thr == pytest.approx(float(np.median(train)))
    boosted = energy.copy()
    boosted[15 + 11 : 15 + 11 + 12] = 1e6  # eval utterance u2 becomes very loud
    frames2, thr2 = build_frames(index, boosted, SPLIT, 8, [1, 2, 4])
    assert thr2 == thr
    assert frames2.filter(pl.col("split") != "eval")["is_high_energy"].to_list() == \
        frames.filter(pl.col("split") != "eval")["is_high_energy"].to_list()
    np.testing.assert_array_equal(frames["is_high_energy"].to_numpy(), frames["energy"].to_numpy() > thr)


def test_utterance_missing_from_the_split_is_an_error():
    with pytest.raises(DataError, match="no split list"):
        build_frames(hand_index([15, 11]), np.zeros(26, np.float32), {"u0": "train"}, 8, [1])


def test_no_train_rows_is_an_error():
    with pytest.raises(DataError, match="too short"):
        build_frames(hand_index([5, 30]), np.zeros(35, np.float32), {"u0": "train", "u1": "eval"}, 8, [1])


def test_the_file_holds_the_columns_build_frames_makes(tmp_path):
    frames, _ = build_frames(hand_index([15, 11, 12, 20]), np.arange(58, dtype=np.float32), SPLIT, 8, [1, 2, 4])
    assert tuple(frames.columns) == COLUMNS
    path = tmp_path / "frames.parquet"
    write_frames(frames, path)
    assert read_frames(path).equals(frames)
    assert read_frames(path, ("row", "split")).columns == ["row", "split"]
    got, want = read_split_rows(path), split_rows(frames)
    assert list(got) == list(want) and all(np.array_equal(got[s], want[s]) for s in want)
    with pytest.raises(DataError, match="no column speaker"):
        read_frames(path, ("row", "speaker"))
    with pytest.raises(DataError, match="missing; run `dvc repro phase0_frames`"):
        read_frames(tmp_path / "none.parquet")
