"""Resolve `data/raw/<dataset>` (the download stage's output) to the official-layout root,
and the `Problem` record every layout and audio check reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from audioprobe.runtime.errors import DataError

SOURCE_FILE = "source.json"
MANIFEST_FILE = "manifest.tsv"  # a `path` source's files: relative path, size, sha256
DATASETS = ("speech_commands", "librispeech", "esc50", "musan", "reasonaqa")
# Suffixes that mark a file as audio whatever its case, so an `.WAV` or a stray `.mp3`
# inside a layout is reported instead of silently left out.
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset copy: which file or folder, what, and what to do."""

    path: str
    what: str
    fix: str
    kind: str = "layout"  # layout | audio, and for audio the rule broken (e.g. "sample rate")

    def line(self) -> str:
        return f"{self.path}: {self.what}; {self.fix}"


class DataProblems(DataError):
    """Every problem found in one dataset copy; str() is a summary line then one line each."""

    def __init__(self, dataset: str, problems: list[Problem], n_files: int | None = None):
        self.dataset, self.problems, self.n_files = dataset, list(problems), n_files
        super().__init__(self.summary())

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for p in self.problems:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        per_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        of = f" in {self.n_files} audio file(s) checked" if self.n_files is not None else ""
        return (f"data.{self.dataset}: {len(self.problems)} problem(s){of} ({per_kind}); "
                f"fix every line below, then rerun")

    def __str__(self) -> str:
        return "\n".join([self.summary(), *(f"  {p.line()}" for p in self.problems)])


def is_hidden(path: Path, root: Path) -> bool:
    """True for files under a dot-folder or dot-named (.DS_Store, ._x, .git); layouts skip them."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def is_audio_name(name: str) -> bool:
    return name.lower().endswith(AUDIO_SUFFIXES)


def read_source(raw_dir: str | Path) -> dict:
    """Return the source record the download stage wrote into raw_dir."""
    raw_dir = Path(raw_dir)
    f = raw_dir / SOURCE_FILE
    if not f.is_file():
        raise DataError(f"{raw_dir}: no {SOURCE_FILE}; run `dvc repro data_download@{raw_dir.name}` first")
    return json.loads(f.read_text())


def dataset_root(raw_dir: str | Path, params_file: str | Path = "params.yaml") -> Path:
    """Return the folder holding the official layout for this download output.

    embedded/url: a folder inside raw_dir. path: the user's local copy, read in place, found
    through `data.<dataset>.path` in `params_file` (the download output records no host
    path); every file of its manifest must still be there with its size, or the copy is not
    the one the download stage checked.
    """
    raw_dir = Path(raw_dir)
    rec = read_source(raw_dir)
    if rec["source"] == "path":
        return _local_copy(raw_dir, rec["dataset"], Path(params_file))
    root = raw_dir / rec["root"]
    if not root.is_dir():
        raise DataError(f"{raw_dir}/{SOURCE_FILE}: dataset root {root} does not exist")
    return root


def _local_copy(raw_dir: Path, name: str, params_file: Path) -> Path:
    from audioprobe.runtime import params

    root = Path(params.load_group(f"data.{name}", params_file).path).expanduser()
    redo = f"run `dvc repro data_download@{name}` to check the copy data.{name}.path names"
    if not root.is_dir():
        raise DataError(f"{params_file}: data.{name}.path {root} is not a folder; {redo}")
    changed = []
    for line in (raw_dir / MANIFEST_FILE).read_text().splitlines():
        rel, size, _ = line.split("\t")
        f = root / rel
        if not f.is_file() or f.stat().st_size != int(size):
            changed.append(rel)
    if changed:
        raise DataError(f"{root}: {len(changed)} file(s) missing or changed since data_download@{name} checked "
                        f"this copy (first: {changed[0]}); {redo}")
    return root
