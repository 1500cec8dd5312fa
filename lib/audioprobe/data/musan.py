"""MUSAN layout: `music/<source>/*.wav`, `noise/<source>/*.wav`, `speech/<source>/*.wav`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audioprobe.data.layout import DataProblems, Problem, is_audio_name, is_hidden

CATEGORIES = ("music", "noise", "speech")


@dataclass(frozen=True)
class Item:
    relpath: str
    category: str  # music | noise | speech
    source: str  # e.g. fma, free-sound, librivox


def scan(root: str | Path, category: str | None = None) -> tuple[list[Item], list[Problem]]:
    """Return (audio items under the category folders sorted, every layout problem).

    Problems: no category folder, audio directly in a category folder or nested below a
    source folder, a non-`.wav` audio file (an `.WAV`, an `.mp3`): each would be left out.
    """
    root = Path(root)
    cats = CATEGORIES if category is None else (category,)
    if not root.is_dir() or not any((root / c).is_dir() for c in CATEGORIES):
        return [], [Problem(str(root), "no music/, noise/ or speech/ folder; not a MUSAN layout",
                            "point the path at the musan/ folder")]
    items, problems = [], []
    for c in cats:
        if not (root / c).is_dir():
            continue
        for f in sorted((root / c).rglob("*")):
            if is_hidden(f, root) or not f.is_file() or not is_audio_name(f.name):
                continue
            rel = f.relative_to(root)
            if len(rel.parts) != 3:
                problems.append(Problem(str(f), f"audio not in {c}/<source>/", "move it into a source folder"))
            elif f.suffix != ".wav":
                problems.append(Problem(str(f), f"suffix {f.suffix}; MUSAN files end in .wav",
                                        "convert or rename it to .wav, or remove it"))
            else:
                items.append(Item(rel.as_posix(), c, f.parent.name))
    if not items and not problems and category is None:
        problems.append(Problem(str(root), "no <category>/<source>/*.wav files", "point the path at the musan/ folder"))
    return items, problems


def list_items(root: str | Path, category: str | None = None) -> list[Item]:
    """Audio files under the category folders (sorted), optionally of one category; raises DataProblems."""
    items, problems = scan(root, category)
    if problems:
        raise DataProblems("musan", problems)
    return items


def audio_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return [root / i.relpath for i in list_items(root)]
