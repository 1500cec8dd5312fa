"""Resolve `data/raw/<dataset>` (the download stage's output) to the official-layout root."""

from __future__ import annotations

import json
from pathlib import Path

from audioprobe.errors import DataError

SOURCE_FILE = "source.json"
DATASETS = ("speech_commands", "librispeech", "esc50", "musan", "reasonaqa")


def read_source(raw_dir: str | Path) -> dict:
    """Return the source record the download stage wrote into raw_dir."""
    raw_dir = Path(raw_dir)
    f = raw_dir / SOURCE_FILE
    if not f.is_file():
        raise DataError(f"{raw_dir}: no {SOURCE_FILE}; run `dvc repro download@{raw_dir.name}` first")
    return json.loads(f.read_text())


def dataset_root(raw_dir: str | Path) -> Path:
    """Return the folder holding the official layout for this download output.

    embedded/url: a folder inside raw_dir; path: the user's local copy, read in place.
    """
    raw_dir = Path(raw_dir)
    rec = read_source(raw_dir)
    root = Path(rec["root"])
    root = root if root.is_absolute() else raw_dir / root
    if not root.is_dir():
        raise DataError(f"{raw_dir}/{SOURCE_FILE}: dataset root {root} does not exist")
    return root
