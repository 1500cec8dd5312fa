"""Speech Commands v2 layout: `<word>/<speaker>_nohash_<n>.wav` + validation/testing lists."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.audio.io import AudioError, read_audio
from audioprobe.data.layout import DataProblems, Problem, is_audio_name

SAMPLE_RATE = 16000
WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on",
    "one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up",
    "visual", "wow", "yes", "zero",
)
BACKGROUND = "_background_noise_"
BACKGROUND_FILES = ("doing_the_dishes.wav", "dude_miaowing.wav", "exercise_bike.wav",
                    "pink_noise.wav", "running_tap.wav", "white_noise.wav")
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # ~134M, from the dataset's README
_NAME = re.compile(r"^(?P<speaker>[0-9a-f]+)_nohash_(?P<n>\d+)\.wav$")


@dataclass(frozen=True)
class Clip:
    relpath: str
    word: str
    speaker: str
    split: str  # train | validation | test


def which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """Return 'validation', 'testing' or 'training' by the official hash of the speaker id.

    The rule of the dataset's README: every clip of one speaker lands in one split.
    """
    hash_name = re.sub(r"_nohash_.*$", "", Path(filename).name)
    h = int(hashlib.sha1(hash_name.encode()).hexdigest(), 16)
    percentage = (h % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def _read_list(root: Path, name: str, problems: list[Problem]) -> set[str]:
    f = root / name
    if not f.is_file():
        problems.append(Problem(str(f), "missing", "a Speech Commands v2 root holds validation_list.txt "
                                "and testing_list.txt; copy them from the official archive"))
        return set()
    return {ln.strip() for ln in f.read_text().splitlines() if ln.strip()}


def _name_problem(f: Path) -> Problem:
    if f.suffix != ".wav" and f.suffix.lower() == ".wav":
        return Problem(str(f), f"upper-case suffix {f.suffix} is not part of the layout (clips end in .wav)",
                       "rename it to lower-case .wav")
    return Problem(str(f), "name is not <speaker>_nohash_<n>.wav", "rename it or remove it")


def scan(root: str | Path) -> tuple[list[Clip], list[Path], list[Problem]]:
    """Return (keyword clips sorted by relpath, background noise files, every layout problem).

    Never stops at the first problem: a misnamed file, an `.WAV`, a stray folder or a
    list entry with no file are all reported.
    """
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        return [], [], [Problem(str(root), "not a folder", "point the path at a Speech Commands v2 root")]
    val = _read_list(root, "validation_list.txt", problems)
    test = _read_list(root, "testing_list.txt", problems)
    clips: list[Clip] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name == BACKGROUND:
            continue
        if entry.is_file():
            if is_audio_name(entry.name):
                problems.append(Problem(str(entry), "audio file outside a word folder",
                                        "move it into its <word>/ folder or remove it"))
            continue
        if entry.name not in WORDS:
            if any(is_audio_name(f.name) for f in entry.rglob("*") if f.is_file()):
                problems.append(Problem(str(entry), "folder is not one of the 35 Speech Commands v2 words, "
                                        "so its audio would be left out", "rename or remove it"))
            continue
        for f in sorted(entry.iterdir()):
            if f.name.startswith("."):
                continue
            if f.is_dir():
                problems.append(Problem(str(f), "sub-folder inside a word folder",
                                        "clips sit directly in <word>/; move them up or remove it"))
                continue
            m = _NAME.match(f.name)
            if not m:
                problems.append(_name_problem(f))
                continue
            rel = f"{entry.name}/{f.name}"
            split = "validation" if rel in val else "test" if rel in test else "train"
            clips.append(Clip(rel, entry.name, m["speaker"], split))
    listed = {c.relpath for c in clips}
    for name, entries in (("validation_list.txt", val), ("testing_list.txt", test)):
        for rel in sorted(entries - listed):
            if not (root / rel).is_file():
                problems.append(Problem(str(root / rel), f"listed in {name} but missing",
                                        f"restore the file or remove the line from {name}"))
    background: list[Path] = []
    bg = root / BACKGROUND
    if bg.is_dir():
        for f in sorted(bg.iterdir()):
            if f.name.startswith(".") or not f.is_file() or not is_audio_name(f.name):
                continue
            if f.suffix == ".wav":
                background.append(f)
            else:
                problems.append(Problem(str(f), f"suffix {f.suffix} in {BACKGROUND}/ (noise files end in .wav)",
                                        "convert or rename it to .wav"))
    if not clips:
        problems.append(Problem(str(root), "no <word>/<speaker>_nohash_<n>.wav clips of the 35 "
                                "Speech Commands v2 words", "point the path at a Speech Commands v2 root"))
    return clips, background, problems


def list_clips(root: str | Path) -> list[Clip]:
    """Return every keyword clip under root (sorted by relpath) with its official split.

    Raises DataProblems listing every layout problem at once.
    """
    clips, _, problems = scan(root)
    if problems:
        raise DataProblems("speech_commands", problems)
    return clips


def load_clip(root: str | Path, relpath: str, length: int = SAMPLE_RATE) -> np.ndarray:
    """Return the clip as float32 [length], zero-padded (or cut when `length` < 1 s is asked for).

    Raises AudioError (a DataError naming the file) for a bad file, a rate other than
    16 kHz, or a clip longer than 1 s: the dataset's clips are at most 1 s, and cutting a
    longer one would silently train on its first second.
    """
    path = Path(root) / relpath
    wave, _ = read_audio(path, expected_sr=SAMPLE_RATE)
    if wave.size > SAMPLE_RATE:
        raise AudioError(f"{path}: {wave.size / SAMPLE_RATE:.3f} s long, but Speech Commands clips are at "
                         f"most 1 s; trim it or remove it")
    out = np.zeros(length, np.float32)
    out[: min(length, wave.size)] = wave[:length]
    return out


def audio_files(root: str | Path) -> list[Path]:
    """Every audio file of the layout (clips, then background noise); raises DataProblems."""
    root = Path(root)
    clips, background, problems = scan(root)
    if problems:
        raise DataProblems("speech_commands", problems)
    return [root / c.relpath for c in clips] + background
