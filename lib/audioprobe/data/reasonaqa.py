"""ReasonAQA layout: one JSON file per split, rows in the Mellow schema."""

from __future__ import annotations

import json
from pathlib import Path

from audioprobe.errors import DataError

FIELDS = ("taskname", "filepath1", "filepath2", "caption1", "caption2", "input", "answer", "subtype")
SPLITS = ("train", "val", "test")


def split_files(root: str | Path) -> dict[str, Path]:
    """Map split -> JSON file; a file belongs to the split named in its stem (e.g. clotho_test.json)."""
    root = Path(root)
    out: dict[str, Path] = {}
    for f in sorted(root.glob("*.json")):
        for s in SPLITS:
            if f.stem == s or f.stem.endswith(f"_{s}") or f.stem.startswith(f"{s}_"):
                out.setdefault(s, f)
    if not out:
        raise DataError(f"{root}: no ReasonAQA JSON files named by split (train/val/test)")
    return out


def load_split(root: str | Path, split: str) -> list[dict]:
    """Rows of one split; every row has the Mellow fields and its audio files exist."""
    root = Path(root)
    files = split_files(root)
    if split not in files:
        raise DataError(f"{root}: no JSON file for split {split!r}; found {sorted(files)}")
    f = files[split]
    try:
        rows = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{f}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rows, list):
        raise DataError(f"{f}: expected a JSON list of rows")
    for i, r in enumerate(rows):
        missing = [k for k in FIELDS if k not in r]
        if missing:
            raise DataError(f"{f}: row {i} lacks fields {missing} of the Mellow schema")
        for key in ("filepath1", "filepath2"):
            if r[key] and not (root / r[key]).is_file():
                raise DataError(f"{f}: row {i} {key} {r[key]!r} does not exist under {root}")
    return rows


def audio_files(root: str | Path) -> list[Path]:
    root = Path(root)
    paths = {r[k] for s in split_files(root) for r in load_split(root, s) for k in ("filepath1", "filepath2") if r[k]}
    return [root / p for p in sorted(paths)]
