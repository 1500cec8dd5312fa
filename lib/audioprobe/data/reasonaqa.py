"""ReasonAQA layout: one JSON file per split, rows in the Mellow schema.

The one owner of the format: which file holds which split, the row fields, the rules for a
row and for the audio paths it names, and the one loader (`load_split`) that the download
checks, the data summary and the reason lane all read rows through.
"""

from __future__ import annotations

import json
from pathlib import Path

from audioprobe.data.layout import DataProblems, Problem
from audioprobe.runtime.errors import DataError

FIELDS = ("taskname", "filepath1", "filepath2", "caption1", "caption2", "input", "answer", "subtype")
SPLITS = ("train", "val", "test")
AUDIO_FIELDS = ("filepath1", "filepath2")  # paths relative to the JSON folder; filepath2 "" = one clip


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


def row_clips(row: dict) -> list[str]:
    """Return the clip paths a row is about, in order: filepath1, then filepath2 when it is not empty."""
    return [row["filepath1"]] + ([row["filepath2"]] if row["filepath2"] else [])


def split_clips(rows: list[dict]) -> list[str]:
    """Return the sorted distinct clip paths these rows name."""
    return sorted({c for r in rows for c in row_clips(r)})


def _row_problems(root: Path, f: Path, i: int, row) -> list[Problem]:
    """Every problem of row `i` of `f`: a JSON object with every Mellow field, a filepath1, audio files that exist."""
    if not isinstance(row, dict):
        return [Problem(f"{f} row {i}", "is not a JSON object with the Mellow fields", "fix the row")]
    missing = [k for k in FIELDS if k not in row]
    if missing:
        return [Problem(f"{f} row {i}", f"lacks fields {missing} of the Mellow schema", "fix the row")]
    if not row["filepath1"]:
        return [Problem(f"{f} row {i}", "has an empty filepath1 (every question is about at least one clip)",
                        "fix the row")]
    return [Problem(str(root / rel), f"named by {f.name} row {i} {key} but missing", "restore the clip or fix the row")
            for key, rel in zip(AUDIO_FIELDS, row_clips(row)) if not (root / rel).is_file()]


def _rows(root: Path, f: Path, problems: list[Problem]) -> list[dict]:
    """Rows of one JSON file; every problem is appended to `problems` and its row left out."""
    try:
        rows = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else " (not UTF-8 text)"
        problems.append(Problem(str(f), f"not valid JSON{where}", "restore the official file"))
        return []
    if not isinstance(rows, list) or not rows:
        problems.append(Problem(str(f), "expected a non-empty JSON list of rows", "restore the official file"))
        return []
    good = []
    for i, r in enumerate(rows):
        bad = _row_problems(root, f, i, r)
        problems.extend(bad)
        if not bad:
            good.append(r)
    return good


def scan(root: str | Path) -> tuple[dict[str, list[dict]], list[Path], list[Problem]]:
    """Return ({split: good rows}, audio files named by any good row (sorted, unique), every problem)."""
    root = Path(root)
    files, problems = _split_files(root)
    if files:  # every split is read by some stage (LM and mappers: train; best-by-dev: val; reason_eval: test)
        problems += [Problem(str(root), f"no JSON file for the {s} split (found {', '.join(sorted(files))})",
                             f"add the {s} split's file (e.g. {s}.json); the reason lane reads all three")
                     for s in SPLITS if s not in files]
    rows = {s: _rows(root, f, problems) for s, f in files.items()}
    return rows, [root / p for p in split_clips([r for rs in rows.values() for r in rs])], problems


def load_split(root: str | Path, split: str) -> list[dict]:
    """Return the rows of one split, or raise; the one loader of ReasonAQA rows.

    The rules (the union of the two loaders this replaces: the data checks' and the reason
    lane's `load_rows`):
    - the split needs its JSON file (`split_files`), else DataError naming the folder, the
      split and the files found;
    - the file is UTF-8 JSON holding a non-empty list (the reason loader's rule: an empty
      split is an error, not zero rows; the data loader's: non-UTF-8 bytes are invalid JSON,
      not a traceback);
    - every row is an object with every field of `FIELDS`, a non-empty `filepath1` (the
      reason loader's rule: a question without a clip is an error, the data checks let it
      through), and every non-empty `filepath1`/`filepath2` names an existing file under `root`.
    Errors: every problem of the file at once, as one `DataProblems` (a DataError): a summary
    line, then one line per problem naming the file and the row (or the missing clip and the
    row naming it) and what to do. The data side's form won over the reason side's single
    line joining every row: one line per problem is what the download check prints, and a
    row lacking fields no longer hides the rows whose audio is missing.
    """
    root = Path(root)
    files = split_files(root)
    if split not in files:
        raise DataError(f"{root}: no ReasonAQA JSON file for split {split!r}; found {sorted(files)}; "
                        f"add a JSON file whose name holds {split!r} (e.g. {split}.json)")
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
