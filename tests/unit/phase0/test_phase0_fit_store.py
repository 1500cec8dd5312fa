"""The conditioning folder (audioprobe.phase0.fit_store): what the writers write the readers read
back, byte-stable, and assignments fitted on other frames are refused."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.phase0.fit_store import (
    FitInfo,
    read_assignments,
    read_info,
    read_target_norm,
    write_info,
    write_lag,
    write_target_norm,
)
from audioprobe.runtime.errors import DataError

ROWS = {"train": np.arange(10, 20, dtype=np.int64), "eval": np.arange(30, 34, dtype=np.int64)}
INFO = FitInfo(seed=5, window=4, lags=[1, 2], schemes=["mean_vq64"], n_clusters={"mean_vq64": 8},
               kmeans_init="k-means++", kmeans_n_init=2, kmeans_max_iter=100, rows={"train": 10, "eval": 4},
               dim=3, per_lag={1: {"lag": 1, "n_train_contexts": 10}, 2: {"lag": 2, "n_train_contexts": 10}})


def _ids(n: int, k: int):
    labels = (np.arange(n) % k).astype(np.int32)
    return labels, np.linspace(0, 1, n, dtype=np.float32), labels[::-1].astype(np.int64)


def _write(folder):
    folder.mkdir()
    write_target_norm(folder, np.ones(3, np.float32), np.full(3, 2.0, np.float32))
    ids = {"mean_vq64": {s: _ids(r.size, 8) for s, r in ROWS.items()}}
    for lag in INFO.lags:
        write_lag(folder, lag, {"mean_vq64.centroids": np.zeros((8, 3), np.float32)}, ROWS, ids)
    write_info(folder, INFO)
    return ids


def test_round_trip_and_same_bytes(tmp_path):
    ids = _write(tmp_path / "a")
    _write(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["fit.json", "lag1.safetensors", "lag1_assignments.safetensors", "lag2.safetensors",
                     "lag2_assignments.safetensors", "target_norm.safetensors"]
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    assert read_info(tmp_path / "a") == INFO
    mean, std = read_target_norm(tmp_path / "a")
    assert mean.tolist() == [1.0] * 3 and std.tolist() == [2.0] * 3
    got = read_assignments(tmp_path / "a", 2, ["mean_vq64"], ROWS)
    for split, (labels, distance, rnd) in got["mean_vq64"].items():
        want = ids["mean_vq64"][split]
        np.testing.assert_array_equal(labels, want[0])
        np.testing.assert_array_equal(distance, want[1])
        assert rnd.dtype == np.int32 and rnd.tolist() == want[2].tolist()


def test_other_frames_or_a_missing_fit_is_a_data_error(tmp_path):
    _write(tmp_path / "a")
    with pytest.raises(DataError, match="eval rows differ from the frame index"):
        read_assignments(tmp_path / "a", 1, ["mean_vq64"], {**ROWS, "eval": ROWS["eval"] + 1})
    with pytest.raises(DataError, match="heldout rows differ"):
        read_assignments(tmp_path / "a", 1, ["mean_vq64"], {**ROWS, "heldout": np.arange(3)})
    with pytest.raises(DataError, match="lag4_assignments.safetensors: missing"):
        read_assignments(tmp_path / "a", 4, ["mean_vq64"], ROWS)
    with pytest.raises(DataError, match="fit.json: missing"):
        read_info(tmp_path)
