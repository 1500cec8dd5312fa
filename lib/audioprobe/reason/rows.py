"""ReasonAQA rows of one split, each row's clips, and the shuffled-audio derangement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audioprobe.data.reasonaqa import FIELDS, split_files
from audioprobe.runtime.errors import DataError

SPLITS = ("train", "val", "test")


def load_rows(root: str | Path, split: str) -> list[dict]:
    """Return the rows of one split; DataError listing EVERY row whose audio file is missing."""
    root = Path(root)
    files = split_files(root)
    if split not in files:
        raise DataError(f"{root}: no ReasonAQA JSON for split {split!r}; found {sorted(files)}")
    f = files[split]
    try:
        rows = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{f}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{f}: expected a non-empty JSON list of rows")
    bad_fields, missing = [], []
    for i, r in enumerate(rows):
        lacks = [k for k in FIELDS if k not in r] if isinstance(r, dict) else list(FIELDS)
        if lacks:
            bad_fields.append(f"row {i} lacks {lacks}")
            continue
        for key in ("filepath1", "filepath2"):
            if r[key] and not (root / r[key]).is_file():
                missing.append(f"row {i} {key}={r[key]!r}")
        if not r["filepath1"]:
            missing.append(f"row {i} has no filepath1")
    if bad_fields:
        raise DataError(f"{f}: {len(bad_fields)} rows lack Mellow fields: {'; '.join(bad_fields)}")
    if missing:
        raise DataError(f"{f}: {len(missing)} audio files missing under {root}: {'; '.join(missing)}")
    return rows


def row_clips(row: dict) -> list[str]:
    """Return the clip paths a question is about (one, or two for a comparison question)."""
    return [row["filepath1"]] + ([row["filepath2"]] if row["filepath2"] else [])


def split_clips(rows: list[dict]) -> list[str]:
    """Return the sorted distinct clip paths used by these rows."""
    return sorted({c for r in rows for c in row_clips(r)})


def derangement(items: list[str], seed: int) -> dict[str, str]:
    """Return a seeded map item -> a different item (no fixed points; needs >= 2 items).

    A random cyclic shift of a random permutation: every item moves, and the map is a
    bijection, so every clip's audio is still used exactly once.
    """
    if len(items) < 2:
        raise DataError(f"the shuffled-audio control needs >= 2 distinct clips in a split, got {len(items)}")
    rng = np.random.default_rng(seed)
    order = [items[i] for i in rng.permutation(len(items))]
    shift = int(rng.integers(1, len(items)))
    return {order[k]: order[(k + shift) % len(order)] for k in range(len(order))}
