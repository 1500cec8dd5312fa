"""Write outputs so a failed stage never leaves a partial file or folder behind."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp sibling folder; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temp sibling path to write; on success it is renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically, sorted keys, 2-space indent, trailing newline."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_csv(path: str | Path, rows: list[dict] | Any, float_precision: int | None = None,
              allow_empty: bool = False) -> None:
    """Write a table as CSV atomically: dict rows (columns in the first row's key order) or a
    polars DataFrame. `float_precision`: that many decimals in float columns (dict rows then go
    through polars); None keeps each value's shortest round-trip form. With `allow_empty`, no
    rows write an empty file (e.g. no errors at all); otherwise they are an error."""
    if isinstance(rows, list) and not rows:
        if not allow_empty:
            raise ValueError(f"{path}: no rows to write")
        write_text(path, "")
        return
    with atomic_file(path) as tmp:
        if isinstance(rows, list) and float_precision is None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            return
        import polars as pl

        frame = pl.DataFrame(rows, infer_schema_length=None) if isinstance(rows, list) else rows
        frame.write_csv(tmp, float_precision=float_precision)


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
