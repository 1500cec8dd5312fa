"""Embedded LibriSpeech: eSpeak speakers reading generated sentences, official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import write_audio
from audioprobe.data.librispeech import SAMPLE_RATE as SR
from audioprobe.data.synth.espeak import SpeakJob, speak_batches
from audioprobe.data.synth.postprocess import add_floor, trim_silence
from audioprobe.audio.resample import resample
from audioprobe.data.synth.sentences import sentence
from audioprobe.data.synth.voices import draw_voice, sex
from audioprobe.data.params import LibriSpeechEmbedded

SUBSET = "train-clean-100"


def write(root: Path, cfg: LibriSpeechEmbedded, processes: int = 2) -> None:
    """Write speakers × utterances of 3–12 s (by default) as FLAC with transcripts."""
    rng0 = np.random.default_rng([cfg.seed, 10])
    speakers = sorted(int(s) for s in rng0.choice(np.arange(19, 9000), cfg.speakers, replace=False))
    voices = [draw_voice(np.random.default_rng([cfg.seed, 11, s]), rate=(130, 190)) for s in speakers]
    jobs, meta = [], []
    for spk, voice in zip(speakers, voices):
        rng = np.random.default_rng([cfg.seed, 12, spk])
        chapter = int(rng.integers(1000, 200000))
        batch = []
        for u in range(cfg.utterances):
            lo, hi = cfg.min_seconds + 0.7, max(cfg.min_seconds + 0.8, cfg.max_seconds - 2.0)
            target = rng.uniform(lo, hi)
            text = sentence(rng, max(3, int(target * voice.rate / 60.0)))
            batch.append(SpeakJob(text.lower(), voice))
            meta.append((spk, chapter, u, text))
        jobs.append(batch)
    k = 0
    chapters: dict[tuple[int, int], list[str]] = {}
    for sr_in, waves in tqdm(speak_batches(jobs, processes), total=len(jobs), desc="librispeech", unit="spk"):
        for wave in waves:
            spk, chapter, u, text = meta[k]
            rng = np.random.default_rng([cfg.seed, 13, spk, u])
            x = trim_silence(resample(wave, sr_in, SR))
            x = x / (np.max(np.abs(x)) or 1.0) * 10 ** (rng.uniform(-18, -4) / 20)
            # LibriSpeech segments keep short pauses at both ends.
            pad = [np.zeros(int(rng.uniform(0.1, 0.4) * SR), np.float32) for _ in range(2)]
            x = np.concatenate([pad[0], x, pad[1]])
            n_min, n_max = int(cfg.min_seconds * SR), int(cfg.max_seconds * SR)
            if x.size < n_min:
                x = np.concatenate([x, np.zeros(n_min - x.size, np.float32)])
            x = add_floor(rng, x[:n_max], (30.0, 50.0))
            uid = f"{spk}-{chapter}-{u:04d}"
            write_audio(root / SUBSET / str(spk) / str(chapter) / f"{uid}.flac", x, SR)
            chapters.setdefault((spk, chapter), []).append(f"{uid} {text}")
            k += 1
    for (spk, chapter), lines in chapters.items():
        (root / SUBSET / str(spk) / str(chapter) / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for spk, voice in zip(speakers, voices):
        minutes = cfg.utterances * (cfg.min_seconds + cfg.max_seconds) / 2 / 60
        rows.append(f"{spk:<5}| {sex(voice)} | {SUBSET:<17}| {minutes:5.2f} | espeak {voice.name} p{voice.pitch} r{voice.rate}")
    (root / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n")
