"""MUSAN layout: `music/<source>/*.wav`, `noise/<source>/*.wav`, `speech/<source>/*.wav`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audioprobe.errors import DataError

CATEGORIES = ("music", "noise", "speech")


@dataclass(frozen=True)
class Item:
    relpath: str
    category: str  # music | noise | speech
    source: str  # e.g. fma, free-sound, librivox


def list_items(root: str | Path, category: str | None = None) -> list[Item]:
    """Audio files under the category folders (sorted), optionally of one category."""
    root = Path(root)
    cats = CATEGORIES if category is None else (category,)
    if not any((root / c).is_dir() for c in CATEGORIES):
        raise DataError(f"{root}: no music/, noise/ or speech/ folder; not a MUSAN layout")
    items = []
    for c in cats:
        for f in sorted((root / c).glob("*/*.wav")):
            items.append(Item(f.relative_to(root).as_posix(), c, f.parent.name))
    return items


def audio_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return [root / i.relpath for i in list_items(root)]
