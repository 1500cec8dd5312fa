"""The clip table and audio the audio-LLM reads: detect_hygiene's clips.parquet, audio under detect_dataset's folder.

Column names are the dataset stage's: clip_id, split, label (SPEECH / NONSPEECH),
duration_ms, snr_db, nonspeech_type, ..., audio (a path relative to the clip folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from audioprobe.runtime.errors import DataError

SR = 16000
LABELS = ("SPEECH", "NONSPEECH")
NEEDED = ["clip_id", "split", "label", "duration_ms", "snr_db", "audio"]
CONDITION = ["duration_ms", "snr_db"]  # one condition = one cell of the factorial design


def read_table(path: Path, splits: tuple[str, ...] | None = None) -> pl.DataFrame:
    """The clip table (rows of `splits` only, file order kept); DataError naming the file when a column is missing."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; run detect_dataset and detect_hygiene first")
    table = pl.read_parquet(path)
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; rerun detect_hygiene")
    bad = sorted(set(table["label"].unique().to_list()) - set(LABELS))
    if bad:
        raise DataError(f"{path}: label must be SPEECH or NONSPEECH, found {bad}")
    if splits is not None:
        table = table.filter(pl.col("split").is_in(list(splits)))
    return table


def speech_targets(table: pl.DataFrame) -> np.ndarray:
    """[N] 1 for SPEECH, 0 for NONSPEECH."""
    return (table["label"] == "SPEECH").to_numpy().astype(int)


def conditions(table: pl.DataFrame) -> np.ndarray:
    """[N] condition id of each row (duration x SNR cell), for balanced accuracy over conditions."""
    keys = [f"{d}|{s}" for d, s in zip(table["duration_ms"], table["snr_db"])]
    return np.unique(np.array(keys), return_inverse=True)[1]
