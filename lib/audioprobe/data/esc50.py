"""ESC-50 layout: `audio/<fold>-<src>-<take>-<target>.wav` + `meta/esc50.csv`."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.audio.io import read_audio
from audioprobe.data.layout import DataProblems, Problem, is_audio_name

META_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
_NAME = re.compile(r"^[1-5]-[0-9A-Za-z]+-[A-Z]-\d+\.wav$")


@dataclass(frozen=True)
class Clip:
    relpath: str  # audio/<filename>
    fold: int
    target: int
    category: str


def scan(root: str | Path) -> tuple[list[Clip], list[Problem]]:
    """Return (clips of meta/esc50.csv sorted by filename, every layout problem), never stopping early.

    Problems: missing meta file or columns, a row whose file is missing or misnamed, a
    non-integer fold/target, an audio file in audio/ that no row lists (left out otherwise).
    """
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        return [], [Problem(str(meta), "missing", "an ESC-50 root holds meta/esc50.csv and audio/; "
                                                   "point the path at the folder holding both")]
    with open(meta, newline="") as f:
        reader = csv.DictReader(f)
        missing_cols = set(META_COLUMNS) - set(reader.fieldnames or [])
        if missing_cols:
            return [], [Problem(str(meta), f"missing columns {sorted(missing_cols)}",
                                "use the official meta/esc50.csv header")]
        rows = list(reader)
    clips, problems = [], []
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        rel = f"audio/{r['filename']}"
        if not _NAME.match(r["filename"]):
            problems.append(Problem(f"{meta}:{i}", f"filename {r['filename']!r} is not "
                                    "<fold>-<src>-<take>-<target>.wav", "fix the row or the file name"))
            continue
        if not (root / rel).is_file():
            problems.append(Problem(str(root / rel), "listed in meta/esc50.csv but missing",
                                    "restore the file or remove its row"))
            continue
        try:
            clips.append(Clip(rel, int(r["fold"]), int(r["target"]), r["category"]))
        except ValueError:
            problems.append(Problem(f"{meta}:{i}", f"fold {r['fold']!r} or target {r['target']!r} "
                                    "is not an integer", "fix the row"))
    listed = {c.relpath for c in clips} | {f"audio/{r['filename']}" for r in rows}
    audio = root / "audio"
    for f in sorted(audio.iterdir()) if audio.is_dir() else []:
        if f.name.startswith(".") or not is_audio_name(f.name) or f"audio/{f.name}" in listed:
            continue
        what = ("upper-case suffix and not listed in meta/esc50.csv" if f.suffix.lower() == ".wav"
                and f.suffix != ".wav" else "not listed in meta/esc50.csv, so it would be left out")
        problems.append(Problem(str(f), what, "add its row to meta/esc50.csv (with a .wav name) or remove it"))
    if not clips and not problems:
        problems.append(Problem(str(meta), "no rows", "use the official meta/esc50.csv"))
    return sorted(clips, key=lambda c: c.relpath), problems


def list_clips(root: str | Path) -> list[Clip]:
    """Rows of meta/esc50.csv whose audio file exists (sorted by filename); raises DataProblems."""
    clips, problems = scan(root)
    if problems:
        raise DataProblems("esc50", problems)
    return clips


def load_clip(root: str | Path, clip: Clip) -> tuple[np.ndarray, int]:
    return read_audio(Path(root) / clip.relpath)


def audio_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return [root / c.relpath for c in list_clips(root)]
