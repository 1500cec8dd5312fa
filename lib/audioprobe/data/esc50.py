"""ESC-50 layout: `audio/<fold>-<src>-<take>-<target>.wav` + `meta/esc50.csv`."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.audio.io import read_audio
from audioprobe.errors import DataError

META_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


@dataclass(frozen=True)
class Clip:
    relpath: str  # audio/<filename>
    fold: int
    target: int
    category: str


def list_clips(root: str | Path) -> list[Clip]:
    """Rows of meta/esc50.csv whose audio file exists layout-wise (sorted by filename)."""
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DataError(f"{meta}: missing; an ESC-50 root has meta/esc50.csv and audio/")
    with open(meta, newline="") as f:
        reader = csv.DictReader(f)
        missing_cols = set(META_COLUMNS) - set(reader.fieldnames or [])
        if missing_cols:
            raise DataError(f"{meta}: missing columns {sorted(missing_cols)}")
        rows = list(reader)
    clips = []
    for r in rows:
        rel = f"audio/{r['filename']}"
        if not (root / rel).is_file():
            raise DataError(f"{root / rel}: listed in meta/esc50.csv but missing")
        clips.append(Clip(rel, int(r["fold"]), int(r["target"]), r["category"]))
    return sorted(clips, key=lambda c: c.relpath)


def load_clip(root: str | Path, clip: Clip) -> tuple[np.ndarray, int]:
    return read_audio(Path(root) / clip.relpath)


def audio_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return [root / c.relpath for c in list_clips(root)]
