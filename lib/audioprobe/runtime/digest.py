"""A folder's content digest: the one small file a stage depends on instead of a big folder.

DVC checks a folder dependency file by file (a stat and a state-db lookup each), for every
stage that lists it, on every `dvc repro`, a no-op included: the detect clips (4,800 files)
read by 8 stages alone cost 38k lookups. A producing stage therefore writes
`<folder>/digest.json` last (a sha256 over every file's relative path and content), and
consumers list `<folder>/digest.json` as their dependency: it changes whenever any file in
the folder does, and DVC orders the stages by it (a file inside another stage's output).
A hand edit of the folder itself marks the producing stage changed (its output), and
`dvc repro` restores the folder before anything reads it. Datasets use the same idea
through `data/raw/<dataset>/source.json` (its `sha256` covers every file).
"""

from __future__ import annotations

import json
from pathlib import Path

from audioprobe.runtime.provenance import sha256_tree

DIGEST_FILE = "digest.json"


def write_digest(folder: str | Path) -> dict:
    """Write `folder/digest.json` ({"files", "sha256"} over every file in it); return the record.

    Call it last, on the folder's temp copy (inside `atomic_dir`), so it covers every file.
    """
    folder = Path(folder)
    target = folder / DIGEST_FILE
    if target.exists():
        raise FileExistsError(f"{target} exists: write the digest once, after every other file")
    rec = {"files": sum(1 for q in folder.rglob("*") if q.is_file()), "sha256": sha256_tree(folder)}
    target.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    return rec
