"""ReasonAQA layout: one JSON file per split, rows in the Mellow schema."""

from __future__ import annotations

import json
from pathlib import Path

from audioprobe.data.layout import DataProblems, Problem
from audioprobe.runtime.errors import DataError

FIELDS = ("taskname", "filepath1", "filepath2", "caption1", "caption2", "input", "answer", "subtype")
SPLITS = ("train", "val", "test")


def split_files(root: str | Path) -> dict[str, Path]:
    """Map split -> JSON file; a file belongs to the split named in its stem (e.g. clotho_test.json)."""
    files, problems = _split_files(Path(root))
    if problems:
        raise DataProblems("reasonaqa", problems)
    return files


def _split_files(root: Path) -> tuple[dict[str, Path], list[Problem]]:
    out: dict[str, Path] = {}
    for f in sorted(root.glob("*.json")) if root.is_dir() else []:
        for s in SPLITS:
            if f.stem == s or f.stem.endswith(f"_{s}") or f.stem.startswith(f"{s}_"):
                out.setdefault(s, f)
    if not out:
        return out, [Problem(str(root), "no ReasonAQA JSON files named by split (train/val/test)",
                             "point the path at the folder holding the split JSON files")]
    return out, []


def _rows(root: Path, f: Path, problems: list[Problem]) -> list[dict]:
    """Rows of one JSON file; bad rows are reported in `problems` and left out."""
    try:
        rows = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        problems.append(Problem(str(f), f"not valid JSON{where}", "restore the official file"))
        return []
    if not isinstance(rows, list):
        problems.append(Problem(str(f), "expected a JSON list of rows", "restore the official file"))
        return []
    good = []
    for i, r in enumerate(rows):
        missing = [k for k in FIELDS if not isinstance(r, dict) or k not in r]
        if missing:
            problems.append(Problem(f"{f} row {i}", f"lacks fields {missing} of the Mellow schema", "fix the row"))
            continue
        absent = [k for k in ("filepath1", "filepath2") if r[k] and not (root / r[k]).is_file()]
        for key in absent:
            problems.append(Problem(str(root / r[key]), f"named by {f.name} row {i} {key} but missing",
                                    "restore the clip or fix the row"))
        if not absent:
            good.append(r)
    return good


def scan(root: str | Path) -> tuple[dict[str, list[dict]], list[Path], list[Problem]]:
    """Return ({split: rows}, audio files named by any row (sorted, unique), every problem)."""
    root = Path(root)
    files, problems = _split_files(root)
    rows = {s: _rows(root, f, problems) for s, f in files.items()}
    paths = {r[k] for rs in rows.values() for r in rs for k in ("filepath1", "filepath2") if r[k]}
    return rows, [root / p for p in sorted(paths)], problems


def load_split(root: str | Path, split: str) -> list[dict]:
    """Rows of one split; every row has the Mellow fields and its audio files exist (else DataProblems)."""
    root = Path(root)
    files = split_files(root)
    if split not in files:
        raise DataError(f"{root}: no JSON file for split {split!r}; found {sorted(files)}")
    problems: list[Problem] = []
    rows = _rows(root, files[split], problems)
    if problems:
        raise DataProblems("reasonaqa", problems)
    return rows


def audio_files(root: str | Path) -> list[Path]:
    """Every clip any row names (sorted, unique); raises DataProblems."""
    _, files, problems = scan(root)
    if problems:
        raise DataProblems("reasonaqa", problems)
    return files
