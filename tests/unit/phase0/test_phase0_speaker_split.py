"""Speaker split: seeded, proportional (200/51 of 251), disjoint, 10 % utterance hold-out."""

from __future__ import annotations

import pytest

from audioprobe.runtime.errors import DataError
from audioprobe.phase0.params import Phase0Split
from audioprobe.phase0.speaker_split import (
    FILES,
    n_eval_speakers,
    read_split,
    split_speakers,
    write_split,
)


def corpus(n_speakers: int, per_speaker: int = 3) -> tuple[list[str], list[str]]:
    utts, spks = [], []
    for s in range(n_speakers):
        for u in range(per_speaker):
            utts.append(f"{100 + s}-7-{u:04d}")
            spks.append(str(100 + s))
    return utts, spks


def split(n_speakers: int, seed: int = 42, per_speaker: int = 3):
    cfg = Phase0Split()  # the params.yaml defaults
    utts, spks = corpus(n_speakers, per_speaker)
    return split_speakers(utts, spks, seed, cfg.eval_fraction, cfg.heldout_fraction)


def test_real_corpus_size_gives_200_train_51_eval():
    s = split(251)
    assert (len(s.train_speakers), len(s.eval_speakers)) == (200, 51)
    assert not set(s.train_speakers) & set(s.eval_speakers)


@pytest.mark.parametrize("n, n_eval", [(2, 1), (3, 1), (5, 1), (10, 2), (24, 5), (80, 16), (251, 51)])
def test_smaller_corpora_scale_proportionally(n, n_eval):
    assert n_eval_speakers(n, Phase0Split().eval_fraction) == n_eval
    assert len(split(n).eval_speakers) == n_eval


def test_one_speaker_cannot_be_split():
    with pytest.raises(DataError, match="at least 2 speakers"):
        split(1)


def test_every_utterance_in_exactly_one_list_and_holdout_is_train_speakers_only():
    utts, spks = corpus(30, 5)
    s = split(30, per_speaker=5)
    lists = [s.train_utts, s.heldout_utts, s.eval_utts]
    assert sorted(u for lst in lists for u in lst) == sorted(utts)
    assert sum(len(x) for x in lists) == len(set().union(*map(set, lists)))
    speaker = dict(zip(utts, spks))
    assert {speaker[u] for u in s.eval_utts} == set(s.eval_speakers)
    assert {speaker[u] for u in s.train_utts + s.heldout_utts} <= set(s.train_speakers)
    n_train_all = len(s.train_utts) + len(s.heldout_utts)
    assert len(s.heldout_utts) == round(0.1 * n_train_all)
    assert all(lst == sorted(lst) for lst in lists + [s.train_speakers, s.eval_speakers])


def test_same_seed_same_split_any_input_order_other_seed_differs():
    utts, spks = corpus(40)
    a = split_speakers(utts, spks, 42)
    b = split_speakers(utts[::-1], spks[::-1], 42)
    c = split_speakers(utts, spks, 668)
    assert a == b
    assert a.eval_speakers != c.eval_speakers


def test_split_lists_round_trip_sorted_one_id_per_line(tmp_path):
    s = split(24)
    write_split(s, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES.values())
    lines = (tmp_path / "eval_utt_ids.txt").read_text().splitlines()
    assert lines == sorted(lines) == s.eval_utts
    assert read_split(tmp_path) == s
    assert set(s.split_of().values()) == {"train", "heldout", "eval"}
