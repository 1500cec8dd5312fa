"""Embedded Speech Commands v2: eSpeak speakers saying the 35 words, official layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import write_audio
from audioprobe.data import speech_commands as sc
from audioprobe.data.synth import sounds
from audioprobe.data.synth.espeak import SpeakJob, speak_batches
from audioprobe.data.synth.postprocess import finish, place
from audioprobe.data.synth.voices import draw_voice
from audioprobe.data.params import SpeechCommandsEmbedded

SR = sc.SAMPLE_RATE


def speaker_ids(seed: int, n: int) -> list[str]:
    """n 8-hex speaker ids whose official hash split gives ≥ 10 % (≥ 1) val and test speakers.

    Ids are drawn in a seeded sequence and accepted while their split's quota is open,
    so the lists written later are exactly what the official rule computes.
    """
    n_val = n_test = max(1, round(0.1 * n)) if n >= 3 else 0
    quota = {"validation": n_val, "testing": n_test, "training": n - n_val - n_test}
    ids, i = [], 0
    while len(ids) < n:
        sid = hashlib.sha1(f"audioprobe-sc-{seed}-{i}".encode()).hexdigest()[:8]
        split = sc.which_set(f"{sid}_nohash_0.wav")
        if quota[split] > 0:
            quota[split] -= 1
            ids.append(sid)
        i += 1
    return sorted(ids)


def _background(name: str, rng: np.random.Generator, seconds: float) -> np.ndarray:
    gen = {
        "doing_the_dishes.wav": lambda: 0.6 * sounds.water_drops(rng, seconds, SR) + 0.4 * sounds.clapping(rng, seconds, SR),
        "dude_miaowing.wav": lambda: sounds.siren(rng, seconds, SR) * 0.5 + 0.5 * sounds.chirping_birds(rng, seconds, SR),
        "exercise_bike.wav": lambda: sounds.engine(rng, seconds, SR),
        "pink_noise.wav": lambda: sounds.pink(rng, seconds, SR),
        "running_tap.wav": lambda: sounds.rain(rng, seconds, SR),
        "white_noise.wav": lambda: sounds.white(rng, seconds, SR),
    }[name]
    return (gen() * 0.5).astype(np.float32)


def write(root: Path, cfg: SpeechCommandsEmbedded, processes: int = 2) -> None:
    """Write the embedded corpus under root in the official v2 layout."""
    words = sc.WORDS[: cfg.words]
    spk = speaker_ids(cfg.seed, cfg.speakers)
    voices = [draw_voice(np.random.default_rng([cfg.seed, 1, i]), rate=(110, 190)) for i in range(len(spk))]
    batches = [[SpeakJob(w, v) for w in words] for v in voices]
    val, test = [], []
    it = speak_batches(batches, processes)
    for i, (sr_in, waves) in enumerate(tqdm(it, total=len(batches), desc="speech_commands", unit="spk")):
        for j, (word, wave) in enumerate(zip(words, waves)):
            rng = np.random.default_rng([cfg.seed, 2, i, j])
            clip = place(rng, finish(rng, wave, sr_in, SR), SR)
            rel = f"{word}/{spk[i]}_nohash_0.wav"
            write_audio(root / rel, clip, SR)
            split = sc.which_set(rel)
            (val if split == "validation" else test if split == "testing" else []).append(rel)
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in sorted(val)))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in sorted(test)))
    for k, name in enumerate(sc.BACKGROUND_FILES):
        rng = np.random.default_rng([cfg.seed, 3, k])
        write_audio(root / sc.BACKGROUND / name, _background(name, rng, cfg.noise_seconds), SR)
    (root / "README.md").write_text(
        "Embedded Speech Commands v2 look-alike written by audioprobe's synthesizer:\n"
        "eSpeak NG voices as speakers; split lists follow the official hash rule.\n"
    )
