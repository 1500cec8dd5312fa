"""Speech Commands v2 layout: `<word>/<speaker>_nohash_<n>.wav` + validation/testing lists."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.audio.io import read_audio
from audioprobe.errors import DataError

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


def _read_list(root: Path, name: str) -> set[str]:
    f = root / name
    if not f.is_file():
        raise DataError(f"{f}: missing; a Speech Commands v2 root has validation_list.txt and testing_list.txt")
    return {ln.strip() for ln in f.read_text().splitlines() if ln.strip()}


def list_clips(root: str | Path) -> list[Clip]:
    """Return every keyword clip under root (sorted by relpath) with its official split."""
    root = Path(root)
    val, test = _read_list(root, "validation_list.txt"), _read_list(root, "testing_list.txt")
    clips = []
    for word in WORDS:
        d = root / word
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.wav")):
            m = _NAME.match(f.name)
            if not m:
                raise DataError(f"{f}: name is not <speaker>_nohash_<n>.wav")
            rel = f"{word}/{f.name}"
            split = "validation" if rel in val else "test" if rel in test else "train"
            clips.append(Clip(rel, word, m["speaker"], split))
    if not clips:
        raise DataError(f"{root}: no <word>/*.wav clips of the 35 Speech Commands v2 words")
    return clips


def load_clip(root: str | Path, relpath: str, length: int = SAMPLE_RATE) -> np.ndarray:
    """Return the clip as float32 [length], zero-padded or trimmed to 1 s."""
    wave, _ = read_audio(Path(root) / relpath, expected_sr=SAMPLE_RATE)
    out = np.zeros(length, np.float32)
    out[: min(length, wave.size)] = wave[:length]
    return out


def audio_files(root: str | Path) -> list[Path]:
    """Every audio file of the layout, for integrity checks and reports."""
    root = Path(root)
    files = [root / c.relpath for c in list_clips(root)]
    bg = root / BACKGROUND
    return files + (sorted(bg.glob("*.wav")) if bg.is_dir() else [])
