"""The phase0 frame index: one row per target frame t that has a full context at every lag.

Context for lag L ends at t − L and spans x[end − W + 1 … end] (W frames,
inclusive), so the largest lag needs t − max(L) − W + 1 >= 0:
t >= W − 1 + max(L) (which also gives t >= 1, needed by Δx = x[t] − x[t−1]).

This module owns the file `data/phase0/phase0_frames.parquet` (written by phase0_frames,
read by phase0_conditioning and phase0_metrics): one polars parquet table, `COLUMNS`,
built by `build_frames`, written by `write_frames`, read by `read_frames`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from audioprobe.runtime.atomic import atomic_file
from audioprobe.runtime.errors import DataError

SPLITS = ("train", "heldout", "eval")
# row: index into the latents store's x (int64); utterance_id, speaker_id, split: strings;
# t: the frame's index in its utterance (int32); pos_frac = t / utterance frames and
# energy (float32); is_high_energy: energy above the train-split quantile threshold.
COLUMNS = ("row", "utterance_id", "speaker_id", "t", "pos_frac", "energy", "split", "is_high_energy")


def first_target(window: int, lags: list[int]) -> int:
    """Smallest t with a full W-frame context at the largest lag: W − 1 + max(L)."""
    return int(window) - 1 + max(int(lag) for lag in lags)


def build_frames(
    index: pl.DataFrame,
    energy: np.ndarray,
    split_of: dict[str, str],
    window: int,
    lags: list[int],
    high_energy_quantile: float = 0.5,
) -> tuple[pl.DataFrame, float]:
    """Return (frames table, high-energy threshold).

    `index` is latents_index (utterance_id, speaker_id, n_frames, offset); `energy`
    the store's per-row energy; `split_of` maps every utterance id to a split. The
    threshold is the `high_energy_quantile` quantile (0.5: median) of the energy of
    train-split rows of this table only, so eval frames never shape it.
    """
    utt = index["utterance_id"].to_list()
    missing = [u for u in utt if u not in split_of]
    if missing:
        raise DataError(
            f"{len(missing)} utterance(s) of latents_index are in no split list (e.g. {missing[0]}); "
            "rerun `dvc repro phase0_speaker_split`"
        )
    t0 = first_target(window, lags)
    n = index["n_frames"].to_numpy().astype(np.int64)
    offset = index["offset"].to_numpy().astype(np.int64)
    keep = np.maximum(n - t0, 0)  # (U,) rows per utterance
    u_of_row = np.repeat(np.arange(len(n)), keep)  # (R,)
    starts = np.concatenate([[0], np.cumsum(keep)[:-1]])  # first row of each utterance
    t = np.arange(u_of_row.size, dtype=np.int64) - starts[u_of_row] + t0  # (R,)
    row = offset[u_of_row] + t
    utt_split = [split_of[u] for u in utt]
    e = np.asarray(energy, dtype=np.float32)[row]
    train_e = e[np.array([s == "train" for s in utt_split], dtype=bool)[u_of_row]]
    if train_e.size == 0:
        raise DataError(f"no train-split frame with t >= {t0}: utterances too short for window "
                        f"{window} and lags {lags}")
    threshold = float(np.quantile(train_e.astype(np.float64), high_energy_quantile))
    frames = pl.DataFrame({
        "row": row,
        "utterance_id": pl.Series(utt, dtype=pl.String).gather(u_of_row),
        "speaker_id": index["speaker_id"].cast(pl.String).gather(u_of_row),
        "t": t.astype(np.int32),
        "pos_frac": (t / n[u_of_row]).astype(np.float32),
        "energy": e,
        "split": pl.Series(utt_split, dtype=pl.String).gather(u_of_row),
        "is_high_energy": e > threshold,
    })
    return frames, threshold


def split_rows(frames: pl.DataFrame) -> dict[str, np.ndarray]:
    """Return {split: target rows sorted ascending} for the splits present in the table."""
    out = {}
    for split in SPLITS:
        rows = np.sort(frames.filter(pl.col("split") == split)["row"].to_numpy().astype(np.int64))
        if rows.size:
            out[split] = rows
    return out


def write_frames(frames: pl.DataFrame, path: str | Path) -> None:
    """Write the table of build_frames atomically."""
    with atomic_file(path) as tmp:
        frames.write_parquet(tmp)


def read_frames(path: str | Path, columns: Sequence[str] = COLUMNS) -> pl.DataFrame:
    """Read these columns of a table written by write_frames; a missing file or column is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro phase0_frames`")
    absent = [c for c in columns if c not in pl.read_parquet_schema(path)]
    if absent:
        raise DataError(f"{path}: no column {', '.join(absent)}; rerun `dvc repro phase0_frames`")
    return pl.read_parquet(path, columns=list(columns))


def read_split_rows(path: str | Path) -> dict[str, np.ndarray]:
    """split_rows of the table at `path`."""
    return split_rows(read_frames(path, ("row", "split")))
