"""The catalogue of source files a detect clip can be cut from: speech, four non-speech types, backgrounds.

Every source is read through the shared official-layout loaders (`audioprobe.data.*`), so
`embedded` and `path` datasets behave the same. Each source carries the group it is
split by: the speaker for speech, the original recording for ESC-50 (its `src_file`
field, shared by the clips cut from one freesound recording), the file otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from audioprobe.audio.io import read_audio
from audioprobe.audio.resample import resample
from audioprobe.data import esc50, librispeech, musan, speech_commands
from audioprobe.data.synth import sounds
from audioprobe.detect.labels import SR
from audioprobe.runtime.errors import DataError

ANIMAL_TARGETS = range(0, 10)  # ESC-50 targets 0-9: dog ... crow
COLOUR_SECONDS = 4.0


@dataclass(frozen=True)
class Source:
    dataset: str  # librispeech | speech_commands | esc50 | musan | colour
    kind: str  # speech | environment | animals | music | noise
    relpath: str  # source file, relative to its dataset root (colour: "colour/<name>-<k>")
    group: str  # the unit of the split (speaker, recording or file), dataset-prefixed
    speaker: str  # dataset-prefixed speaker id for speech, "" otherwise

    @property
    def file_id(self) -> str:
        return f"{self.dataset}/{self.relpath}"


def catalogue(roots: dict[str, Path], speech_sources: list[str], nonspeech_types: list[str],
              colours: list[str], colour_files: int, esc50_excluded: list[str] = ()) -> list[Source]:
    """Every usable source file (sorted), from the dataset roots that are given; ESC-50 clips of a
    category in `esc50_excluded` are never a source (`esc50_excluded_files` counts them)."""
    out: list[Source] = []
    if "librispeech" in speech_sources:
        for u in librispeech.list_utterances(roots["librispeech"], "all"):
            spk = f"librispeech:{u.speaker}"
            out.append(Source("librispeech", "speech", u.relpath, spk, spk))
    if "speech_commands" in speech_sources:
        for c in speech_commands.list_clips(roots["speech_commands"]):
            spk = f"speech_commands:{c.speaker}"
            out.append(Source("speech_commands", "speech", c.relpath, spk, spk))
    if {"environment", "animals"} & set(nonspeech_types):
        for c in esc50.list_clips(roots["esc50"]):
            if c.category in esc50_excluded:
                continue
            kind = "animals" if c.target in ANIMAL_TARGETS else "environment"
            if kind in nonspeech_types:
                src = Path(c.relpath).name.split("-")[1]  # <fold>-<src>-<take>-<target>.wav
                out.append(Source("esc50", kind, c.relpath, f"esc50:{src}", ""))
    if {"music", "noise"} & set(nonspeech_types):
        for it in musan.list_items(roots["musan"]):
            if it.category in nonspeech_types:
                out.append(Source("musan", it.category, it.relpath, f"musan:{it.relpath}", ""))
    if "noise" in nonspeech_types:
        for c in colours:
            for k in range(colour_files):
                rel = f"colour/{c}-{k}"
                out.append(Source("colour", "noise", rel, f"colour:{rel}", ""))
    return sorted(out, key=lambda s: (s.kind, s.file_id))


def esc50_excluded_files(root: Path, excluded: list[str]) -> dict[str, int]:
    """{category: ESC-50 files of it in this copy} for every excluded category (0 when the copy has none)."""
    counts = dict.fromkeys(excluded, 0)
    for c in esc50.list_clips(root):
        if c.category in counts:
            counts[c.category] += 1
    return counts


class Waves:
    """Loads source and background audio once (16 kHz float32), resampling when needed."""

    def __init__(self, roots: dict[str, Path], seed: int):
        self.roots = roots
        self.seed = seed
        self._load = lru_cache(maxsize=None)(self._read)

    def __call__(self, dataset: str, relpath: str) -> np.ndarray:
        return self._load(dataset, relpath)

    def _read(self, dataset: str, relpath: str) -> np.ndarray:
        if dataset == "colour":
            name, k = Path(relpath).name.rsplit("-", 1)
            idx = ("white", "pink", "brown").index(name)
            rng = np.random.default_rng([self.seed, 40, idx, int(k)])
            return getattr(sounds, name)(rng, COLOUR_SECONDS, SR).astype(np.float32)
        path = Path(self.roots[dataset]) / relpath
        wave, sr = read_audio(path)
        return resample(wave, sr, SR) if sr != SR else wave


def background_files(root: Path, names: list[str]) -> list[str]:
    """Relative paths of the Speech Commands background-noise files asked for; all must exist."""
    bg = Path(root) / speech_commands.BACKGROUND
    missing = [n for n in names if not (bg / n).is_file()]
    if missing:
        present = sorted(p.name for p in bg.glob("*.wav")) if bg.is_dir() else []
        raise DataError(
            f"detect.dataset.background_files: {missing} not in {bg}; present: {present}"
        )
    return [f"{speech_commands.BACKGROUND}/{n}" for n in names]
