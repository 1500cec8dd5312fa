"""Seeded speaker split (train / eval speakers) with an utterance hold-out inside train speakers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.runtime.errors import DataError

# The spec's split of LibriSpeech train-clean-100: 200 train / 51 eval of 251 speakers.
EVAL_FRACTION = 51 / 251
FILES = {
    "train_speakers": "train_speakers.txt",
    "eval_speakers": "eval_speakers.txt",
    "train_utts": "train_utt_ids.txt",
    "heldout_utts": "heldout_utt_ids.txt",
    "eval_utts": "eval_utt_ids.txt",
}


@dataclass(frozen=True)
class SpeakerSplit:
    """Sorted id lists; every utterance is in exactly one of train / heldout / eval."""

    train_speakers: list[str]
    eval_speakers: list[str]
    train_utts: list[str]
    heldout_utts: list[str]
    eval_utts: list[str]

    def split_of(self) -> dict[str, str]:
        """Return utterance id -> 'train' | 'heldout' | 'eval'."""
        out = {u: "train" for u in self.train_utts}
        out.update({u: "heldout" for u in self.heldout_utts})
        out.update({u: "eval" for u in self.eval_utts})
        return out


def n_eval_speakers(n_speakers: int, eval_fraction: float = EVAL_FRACTION) -> int:
    """Eval speakers for a corpus of n: round(n · fraction), at least 1, leaving >= 1 for train."""
    if n_speakers < 2:
        raise DataError(f"a speaker split needs at least 2 speakers, got {n_speakers}")
    return int(min(max(1, round(n_speakers * eval_fraction)), n_speakers - 1))


def split_speakers(
    utt_ids: list[str],
    speaker_ids: list[str],
    seed: int,
    eval_fraction: float = EVAL_FRACTION,
    heldout_fraction: float = 0.1,
) -> SpeakerSplit:
    """Return a seeded split: eval speakers drawn at random, then a random utterance hold-out.

    The hold-out takes round(heldout_fraction · n) of the train speakers' utterances
    (at least 1 when the fraction is > 0 and there are 2 or more), drawn across all
    train speakers at once. Same inputs and seed -> same split, in any input order.
    """
    if len(utt_ids) != len(speaker_ids):
        raise ValueError("utt_ids and speaker_ids differ in length")
    if len(set(utt_ids)) != len(utt_ids):
        raise DataError("utterance ids are not unique")
    speakers = sorted(set(speaker_ids))
    rng = np.random.default_rng(seed)
    n_eval = n_eval_speakers(len(speakers), eval_fraction)
    perm = rng.permutation(len(speakers))
    eval_spk = sorted(speakers[i] for i in perm[:n_eval])
    train_spk = sorted(speakers[i] for i in perm[n_eval:])
    eval_set = set(eval_spk)
    train_all = sorted(u for u, s in zip(utt_ids, speaker_ids) if s not in eval_set)
    eval_utts = sorted(u for u, s in zip(utt_ids, speaker_ids) if s in eval_set)
    n_held = round(heldout_fraction * len(train_all))
    if heldout_fraction > 0 and len(train_all) >= 2:
        n_held = min(max(n_held, 1), len(train_all) - 1)
    held = set(train_all[i] for i in rng.permutation(len(train_all))[:n_held])
    return SpeakerSplit(
        train_speakers=train_spk,
        eval_speakers=eval_spk,
        train_utts=[u for u in train_all if u not in held],
        heldout_utts=sorted(held),
        eval_utts=eval_utts,
    )


def write_split(split: SpeakerSplit, folder: Path) -> None:
    """Write the five id lists, one id per line, sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    for field, name in FILES.items():
        ids = getattr(split, field)
        (folder / name).write_text("".join(f"{i}\n" for i in ids))


def read_split(folder: Path) -> SpeakerSplit:
    """Read the lists written by write_split."""
    def read(name: str) -> list[str]:
        f = Path(folder) / name
        if not f.is_file():
            raise DataError(f"{f}: missing; run `dvc repro phase0_speaker_split`")
        return [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]

    return SpeakerSplit(**{field: read(name) for field, name in FILES.items()})
