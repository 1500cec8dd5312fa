"""Check a dataset copy: its official layout and every audio file against the dataset's own rules.

One call lists every problem of every kind (layout first, then audio), so a researcher
fixes a copy in one pass instead of one traceback at a time. The download stage, every
source (embedded, path, url) and `audioprobe data check` use `check_dataset`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import AudioError, read_audio
from audioprobe.data import esc50, librispeech, musan, reasonaqa, speech_commands
from audioprobe.data.layout import Problem


@dataclass(frozen=True)
class AudioRule:
    """What every audio file of one part of a dataset must satisfy (beyond being valid mono audio)."""

    part: str  # e.g. "keyword clip"
    sample_rates: tuple[int, ...] | None  # None: any rate
    why: str  # where the rule comes from, shown in `audioprobe data check --rules`
    max_seconds: float | None = None
    exact_seconds: float | None = None
    one_rate: bool = False  # every file of the copy shares one rate


# The official rules of each dataset. Every file must also be readable, complete, mono,
# non-empty, finite and not all zeros (digital silence carries no signal to learn from).
RULES: dict[str, dict[str, AudioRule]] = {
    "speech_commands": {
        "clip": AudioRule("keyword clip", (16000,), max_seconds=1.0,
                          why="Speech Commands v2 clips are 16 kHz mono WAV, each one second or shorter"),
        "background": AudioRule("background noise", (16000,),
                                why="_background_noise_/ files are 16 kHz mono WAV of any length"),
    },
    "librispeech": {
        "utterance": AudioRule("utterance", (16000,), max_seconds=35.0,
                               why="LibriSpeech utterances are 16 kHz mono FLAC, segmented to at most 35 s"),
    },
    "esc50": {
        "clip": AudioRule("clip", (44100, 16000), exact_seconds=5.0, one_rate=True,
                          why="ESC-50 clips are 5 s mono WAV, published at 44.1 kHz; a copy resampled "
                              "to 16 kHz is accepted, but one rate for the whole copy"),
    },
    "musan": {
        "file": AudioRule("file", (16000,), why="MUSAN files are 16 kHz mono WAV of any length"),
    },
    "reasonaqa": {
        "clip": AudioRule("clip", None, why="ReasonAQA clips come from Clotho (44.1 kHz) and AudioCaps "
                                            "(mixed rates): any rate, content checks only"),
    },
}


def scan_layout(name: str, root: Path, subset: str | None = None) -> tuple[list[tuple[Path, AudioRule]], list[Problem]]:
    """Return (every audio file with its rule, every layout problem) of dataset `name` at root."""
    rules = RULES[name]
    if name == "speech_commands":
        clips, background, problems = speech_commands.scan(root)
        return ([(root / c.relpath, rules["clip"]) for c in clips]
                + [(f, rules["background"]) for f in background]), problems
    if name == "librispeech":
        utts, problems = librispeech.scan(root)
        if subset and root.is_dir() and subset not in librispeech.subsets(root):
            problems.append(Problem(str(root / subset), f"the configured subset {subset} is not there",
                                    "extract it there or change data.librispeech.subset"))
        return [(root / u.relpath, rules["utterance"]) for u in utts], problems
    if name == "esc50":
        clips, problems = esc50.scan(root)
        return [(root / c.relpath, rules["clip"]) for c in clips], problems
    if name == "musan":
        items, problems = musan.scan(root)
        return [(root / i.relpath, rules["file"]) for i in items], problems
    if name == "reasonaqa":
        _, files, problems = reasonaqa.scan(root)
        return [(f, rules["clip"]) for f in files], problems
    raise KeyError(name)


def check_file(path: Path, rule: AudioRule) -> tuple[list[Problem], int | None]:
    """Return (problems of one file, its sample rate or None when unreadable)."""
    try:
        wave, sr = read_audio(path)
    except AudioError as exc:
        what = str(exc).removeprefix(f"{path}: ")
        return [Problem(str(path), what, "replace it with a valid copy or remove it", kind="unreadable")], None
    out = []
    if rule.sample_rates is not None and sr not in rule.sample_rates:
        want = " or ".join(f"{r} Hz" for r in rule.sample_rates)
        out.append(Problem(str(path), f"sample rate {sr} Hz, but a {rule.part} is {want}",
                           f"resample it to {rule.sample_rates[0]} Hz or remove it", kind="sample rate"))
    seconds = wave.shape[0] / sr
    if rule.max_seconds is not None and wave.shape[0] > round(rule.max_seconds * sr):
        out.append(Problem(str(path), f"{seconds:.3f} s long, but a {rule.part} is at most {rule.max_seconds:g} s",
                           "trim or split it, or remove it", kind="duration"))
    if rule.exact_seconds is not None and abs(wave.shape[0] - rule.exact_seconds * sr) > 1:
        out.append(Problem(str(path), f"{seconds:.3f} s long, but a {rule.part} is {rule.exact_seconds:g} s",
                           "restore the official clip or remove it", kind="duration"))
    if not np.any(wave):
        out.append(Problem(str(path), "every sample is zero (digital silence)",
                           "replace it with the real recording or remove it", kind="silent"))
    return out, sr


def check_files(files: list[tuple[Path, AudioRule]], progress: bool = True) -> list[Problem]:
    """Check every file (threads; libsndfile decodes outside the GIL) and return all problems in file order."""
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(lambda fr: check_file(*fr), files), total=len(files),
                            desc="checking audio", unit="file", disable=not progress or not files))
    problems = [p for probs, _ in results for p in probs]
    # one_rate: the copy's rate is the most common one; files at any other rate are named.
    rated = [(f, rule, sr) for (f, rule), (_, sr) in zip(files, results) if rule.one_rate and sr is not None]
    if rated:
        rates = [sr for _, _, sr in rated]
        common = max(set(rates), key=lambda r: (rates.count(r), r))
        for f, rule, sr in rated:
            if sr != common and sr in (rule.sample_rates or (sr,)):
                problems.append(Problem(str(f), f"sample rate {sr} Hz, but most of this copy is {common} Hz",
                                        f"resample it to {common} Hz so the copy has one rate", kind="sample rate"))
    return problems


def check_dataset(name: str, root: str | Path, subset: str | None = None,
                  progress: bool = True) -> tuple[int, list[Problem]]:
    """Return (number of audio files checked, every layout and audio problem) of one dataset copy.

    Layout problems never stop the check: every file the layout does find is still checked.
    """
    root = Path(root)
    files, problems = scan_layout(name, root, subset)
    return len(files), problems + check_files(files, progress)


def describe_rules(name: str) -> list[str]:
    """One line per rule of dataset `name`, for docs and `audioprobe data check`."""
    return [f"{name} {r.part}: {r.why}" for r in RULES[name].values()]
