"""Embedded MUSAN: procedural music and noise, eSpeak read speech, official folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import write_audio
from audioprobe.audio.resample import resample
from audioprobe.data.synth import sounds
from audioprobe.data.synth.espeak import SpeakJob, speak_batches
from audioprobe.data.synth.postprocess import add_floor, trim_silence
from audioprobe.data.synth.sentences import sentence
from audioprobe.data.synth.voices import draw_voice, sex
from audioprobe.data.params import MusanEmbedded

SR = 16000
SOURCES = {"music": "fma", "noise": "free-sound", "speech": "librivox"}


def noise_kind(i: int) -> str:
    return list(sounds.NOISES)[i % len(sounds.NOISES)]


def write(root: Path, cfg: MusanEmbedded, processes: int = 2) -> None:
    ann: dict[str, list[str]] = {c: [] for c in SOURCES}
    for i in tqdm(range(cfg.music), desc="musan music", unit="file"):
        rng = np.random.default_rng([cfg.seed, 30, i])
        name = f"music-fma-{i:04d}"
        dur = cfg.seconds * rng.uniform(0.8, 1.2)
        write_audio(root / "music/fma" / f"{name}.wav", add_floor(rng, 0.5 * sounds.music(rng, dur, SR), (40, 60)), SR)
        ann["music"].append(f"{name} synth-tune N english")
    for i in tqdm(range(cfg.noise), desc="musan noise", unit="file"):
        rng = np.random.default_rng([cfg.seed, 31, i])
        kind = noise_kind(i)
        name = f"noise-free-sound-{i:04d}"
        dur = cfg.seconds * rng.uniform(0.8, 1.2)
        write_audio(root / "noise/free-sound" / f"{name}.wav", 0.5 * sounds.NOISES[kind](rng, dur, SR), SR)
        ann["noise"].append(f"{name} {kind}")
    jobs = []
    for i in range(cfg.speech):
        rng = np.random.default_rng([cfg.seed, 32, i])
        voice = draw_voice(rng)
        jobs.append([SpeakJob(sentence(rng, int(cfg.seconds * voice.rate / 60)).lower(), voice)])
    for i, (sr_in, (wave,)) in enumerate(tqdm(speak_batches(jobs, processes), total=len(jobs), desc="musan speech")):
        rng = np.random.default_rng([cfg.seed, 33, i])
        x = trim_silence(resample(wave, sr_in, SR))
        x = add_floor(rng, x / (np.max(np.abs(x)) or 1) * 0.5, (30, 50))
        name = f"speech-librivox-{i:04d}"
        write_audio(root / "speech/librivox" / f"{name}.wav", x, SR)
        ann["speech"].append(f"{name} {sex(jobs[i][0].voice)} english")
    for cat, src in SOURCES.items():
        (root / cat / src / "ANNOTATIONS").write_text("\n".join(ann[cat]) + "\n")
    (root / "README").write_text("Embedded MUSAN look-alike written by audioprobe's synthesizer.\n")
