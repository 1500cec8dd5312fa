"""Embedded ESC-50: procedural environmental sounds, 5 s clips in 5 folds, official layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import write_audio
from audioprobe.data.synth import sounds
from audioprobe.data.synth.postprocess import add_floor
from audioprobe.data.params import Esc50Embedded

SR = 16000
SECONDS = 5.0
ESC10 = {"rain", "sea_waves", "crackling_fire", "clock_tick", "helicopter"}


def clip(rng: np.random.Generator, category: str, seconds: float = SECONDS) -> tuple[np.ndarray, float]:
    """One clip of a class: the sound for part or all of the clip, random level; returns (wave, gain_db)."""
    _, gen = sounds.ESC50_CLASSES[category]
    active = rng.uniform(0.5, 1.0) * seconds
    x = np.zeros(int(seconds * SR), np.float32)
    ev = gen(rng, active, SR)
    start = int(rng.integers(0, x.size - ev.size + 1))
    gain_db = float(rng.uniform(-26.0, -3.0))
    x[start : start + ev.size] = ev * 10 ** (gain_db / 20)
    return add_floor(rng, x, (35.0, 55.0)), gain_db


def classes(n: int) -> list[str]:
    if n > len(sounds.ESC50_ORDER):
        raise ValueError(f"data.esc50.embedded.classes: at most {len(sounds.ESC50_ORDER)} procedural classes")
    return sounds.ESC50_ORDER[:n]


def write(root: Path, cfg: Esc50Embedded) -> None:
    rows = []
    cats = classes(cfg.classes)
    jobs = [(c, fold, k) for c in cats for fold in range(1, 6) for k in range(cfg.clips_per_fold)]
    for c, fold, k in tqdm(jobs, desc="esc50", unit="clip"):
        target = sounds.ESC50_CLASSES[c][0]
        rng = np.random.default_rng([cfg.seed, 20, target, fold, k])
        src = 100000 + int(rng.integers(0, 900000))
        name = f"{fold}-{src}-A-{target}.wav"
        wave, _ = clip(rng, c)
        write_audio(root / "audio" / name, wave, SR)
        rows.append((name, fold, target, c, c in ESC10, src, "A"))
    (root / "meta").mkdir(parents=True, exist_ok=True)
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(sorted(rows))
