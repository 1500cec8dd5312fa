"""Small dataset copies in the official layouts, built for tests from ../shared/fixtures or noise.

Shared by the data unit tests and the end-to-end tests (import as `from corpora import ...`: tests/
is on sys.path, as for conftest).
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np

from audioprobe.audio.io import write_audio

SR = 16000


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(n)).clip(-1, 1).astype(np.float32)


def tiny_speech_commands(fixtures: Path, dest: Path, words=("yes", "no"), per_word: int = 3) -> Path:
    """A small valid Speech Commands copy: a few real clips per word, lists filtered to them, one noise file."""
    src = fixtures / "speech_commands"
    kept = []
    for w in words:
        (dest / w).mkdir(parents=True)
        for f in sorted((src / w).glob("*.wav"))[:per_word]:
            shutil.copy2(f, dest / w / f.name)
            kept.append(f"{w}/{f.name}")
    for name in ("validation_list.txt", "testing_list.txt"):
        lines = [ln for ln in (src / name).read_text().splitlines() if ln in kept]
        (dest / name).write_text("".join(ln + "\n" for ln in lines))
    (dest / "_background_noise_").mkdir()
    shutil.copy2(src / "_background_noise_" / "white_noise.wav", dest / "_background_noise_")
    return dest


def tiny_librispeech(fixtures: Path, dest: Path, n_speakers: int = 2) -> Path:
    """A small valid LibriSpeech copy: the test-other chapters of a few speakers with transcripts."""
    src = fixtures / "LibriSpeech" / "test-other"
    for spk in sorted(p.name for p in src.iterdir() if p.is_dir())[:n_speakers]:
        shutil.copytree(src / spk, dest / "test-other" / spk)
    return dest


def esc_archive(tmp_path: Path, bad: bool = False) -> Path:
    root = tmp_path / "src" / "ESC-50-master"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    names = ["1-100-A-0.wav", "2-200-A-1.wav"]
    for i, n in enumerate(names):
        write_audio(root / "audio" / n, noise(5 * SR, i), 8000 if bad and i == 0 else SR)
    rows = ["filename,fold,target,category,esc10,src_file,take"] + [f"{n},{n[0]},{n[-5]},c,True,1,A" for n in names]
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    arc = tmp_path / "master.tar.gz"
    with tarfile.open(arc, "w:gz") as t:
        t.add(root, arcname="ESC-50-master")
    return arc
