"""Where data and weights came from: sha256 of files and folders, and a provenance record."""

from __future__ import annotations

import hashlib
from pathlib import Path

RANDOM_INIT = "random-init"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of one file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: str | Path) -> str:
    """Return a sha256 over every file's relative path and content under `root` (sorted)."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
        h.update(b"\n")
    return h.hexdigest()


def flat_provenance(prefix: str, record: dict[str, str | int | float | bool]) -> dict:
    """Return {f'{prefix}.{k}': v}: provenance as flat keys DVC metrics can show and diff."""
    return {f"{prefix}.{k}": v for k, v in record.items()}
