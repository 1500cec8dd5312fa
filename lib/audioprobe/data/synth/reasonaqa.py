"""Embedded ReasonAQA: QA rows about procedural ESC-50 / MUSAN-style clips, right by construction.

Question types (taskname): identify the sound, multiple choice, yes/no presence,
compare two clips (same source? which is louder?), loudness and duration, all answerable only
from the audio; and `knowledge` (is a named sound a sound of nature?), answerable from the
question text alone (the named sound is drawn at random, not taken from the clip), so an LM
without audio must match one with audio there.
Clips are split train/val/test first; a row only uses clips of its own split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import write_audio
from audioprobe.data.synth import sounds
from audioprobe.data.synth.esc50 import clip as esc_clip
from audioprobe.data.synth.postprocess import add_floor
from audioprobe.data.params import ReasonAqaEmbedded

SR = 16000
LABELS = [*sounds.ESC50_ORDER[:12], "music", "pink_noise"]
LETTERS = "ABCD"
# Knowledge questions: which labels are sounds of nature (the rest are made by people or machines).
NATURE = frozenset({"rain", "chirping_birds", "crickets", "sea_waves", "water_drops"})


@dataclass(frozen=True)
class ClipMeta:
    path: str
    label: str
    gain_db: float
    seconds: float

    @property
    def name(self) -> str:
        return self.label.replace("_", " ")

    @property
    def caption(self) -> str:
        return f"the sound of {self.name}, {'loud' if self.gain_db > -12 else 'quiet'}, {self.seconds:.1f} seconds"


def _make_clip(rng: np.random.Generator, label: str) -> tuple[np.ndarray, float, float]:
    seconds = float(np.round(rng.uniform(2.0, 8.0), 1))
    if label in sounds.ESC50_CLASSES:
        wave, gain_db = esc_clip(rng, label, seconds)
        return wave, gain_db, seconds
    gain_db = float(rng.uniform(-26.0, -3.0))
    src = sounds.music(rng, seconds, SR) if label == "music" else sounds.pink(rng, seconds, SR)
    return add_floor(rng, src * 10 ** (gain_db / 20), (35.0, 55.0)), gain_db, seconds


def _row(taskname, subtype, c1: ClipMeta, c2: ClipMeta | None, question, answer) -> dict:
    return dict(taskname=taskname, subtype=subtype, filepath1=c1.path, filepath2=c2.path if c2 else "",
                caption1=c1.caption, caption2=c2.caption if c2 else "", input=question, answer=answer)


def _question(rng: np.random.Generator, clips: list[ClipMeta]) -> dict:
    kinds = ["identify", "mcq", "presence", "compare_same", "compare_louder", "loudness", "duration", "knowledge"]
    if len(clips) < 2:  # a one-clip split cannot pair two different clips
        kinds = [k for k in kinds if not k.startswith("compare")]
    kind = rng.choice(kinds)
    c1 = clips[int(rng.integers(len(clips)))]
    if kind == "identify":
        return _row("identify", "open", c1, None, "What is the main sound source in this audio?", c1.name)
    if kind == "mcq":
        others = [lab for lab in LABELS if lab != c1.label]
        opts = [c1.label, *rng.choice(others, 3, replace=False)]
        rng.shuffle(opts)
        listing = " ".join(f"{LETTERS[i]}) {o.replace('_', ' ')}" for i, o in enumerate(opts))
        return _row("mcq", "source", c1, None, f"Which sound is heard? {listing}", LETTERS[opts.index(c1.label)])
    if kind == "knowledge":  # the text names the sound: answerable without listening
        named = str(rng.choice(LABELS))
        return _row("knowledge", "nature", c1, None, f"Is {named.replace('_', ' ')} a sound of nature?",
                    "yes" if named in NATURE else "no")
    if kind == "presence":
        asked = c1.label if rng.random() < 0.5 else str(rng.choice([lab for lab in LABELS if lab != c1.label]))
        return _row("yes_no", "presence", c1, None, f"Is there {asked.replace('_', ' ')} in this recording?",
                    "yes" if asked == c1.label else "no")
    # Drawn before loudness/duration too (keeps the corpus bytes); skipped for a one-clip split.
    c2 = clips[int(rng.integers(len(clips)))] if len(clips) > 1 else c1
    while len(clips) > 1 and c2.path == c1.path:
        c2 = clips[int(rng.integers(len(clips)))]
    if kind == "compare_same":
        same = [c for c in clips if c.label == c1.label and c.path != c1.path]
        if same and rng.random() < 0.5:  # balance yes/no: random pairs are mostly different
            c2 = same[int(rng.integers(len(same)))]
        return _row("compare", "same_source", c1, c2, "Do the two recordings contain the same kind of sound?",
                    "yes" if c1.label == c2.label else "no")
    if kind == "compare_louder":
        if abs(c1.gain_db - c2.gain_db) < 6.0:  # too close to call: ask about duration instead
            if abs(c1.seconds - c2.seconds) < 1.0:
                return _question(rng, clips)
            return _row("compare", "longer", c1, c2, "Which recording is longer, the first or the second?",
                        "first" if c1.seconds > c2.seconds else "second")
        return _row("compare", "louder", c1, c2, "Which recording is louder, the first or the second?",
                    "first" if c1.gain_db > c2.gain_db else "second")
    if kind == "loudness":
        if -16.0 < c1.gain_db < -10.0:  # ambiguous middle band is never asked
            return _question(rng, clips)
        return _row("attribute", "loudness", c1, None, "Is the sound loud or quiet?",
                    "loud" if c1.gain_db >= -10.0 else "quiet")
    if abs(c1.seconds - 5.0) < 0.5:
        return _question(rng, clips)
    return _row("attribute", "duration", c1, None, "Is this recording longer than five seconds?",
                "yes" if c1.seconds > 5.0 else "no")


def write(root: Path, cfg: ReasonAqaEmbedded) -> None:
    rng0 = np.random.default_rng([cfg.seed, 40])
    order = rng0.permutation(cfg.clips)
    n_test = n_val = max(1, round(0.15 * cfg.clips))
    split_of = {int(i): "test" if k < n_test else "val" if k < n_test + n_val else "train" for k, i in enumerate(order)}
    clips: dict[str, list[ClipMeta]] = {"train": [], "val": [], "test": []}
    for i in tqdm(range(cfg.clips), desc="reasonaqa audio", unit="clip"):
        rng = np.random.default_rng([cfg.seed, 41, i])
        label = LABELS[i % len(LABELS)]
        wave, gain_db, seconds = _make_clip(rng, label)
        rel = f"audio/{label}_{i:04d}.wav"
        write_audio(root / rel, wave, SR)
        clips[split_of[i]].append(ClipMeta(rel, label, gain_db, seconds))
    for k, split in enumerate(("train", "val", "test")):
        n = round(cfg.rows * len(clips[split]) / cfg.clips)
        rng = np.random.default_rng([cfg.seed, 42, k])
        rows = [_question(rng, clips[split]) for _ in range(max(n, 1))]
        (root / f"{split}.json").write_text(json.dumps(rows, indent=1) + "\n")
