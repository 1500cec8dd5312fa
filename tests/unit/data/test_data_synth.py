"""Embedded synthesizer: byte-identical output, official split rule, and QA answers right by construction."""

from __future__ import annotations

import csv
import json
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioprobe.data import reasonaqa
from audioprobe.data import speech_commands as sc
from audioprobe.data.synth import esc50 as s_esc50
from audioprobe.data.synth import librispeech as s_libri
from audioprobe.data.synth import musan as s_musan
from audioprobe.data.synth import reasonaqa as s_raqa
from audioprobe.data.synth import sounds
from audioprobe.data.synth import speech_commands as s_sc
from audioprobe.data.synth.espeak import SpeakJob, Voice, speak_batches
from audioprobe.data.params import (
    Esc50Embedded, LibriSpeechEmbedded, MusanEmbedded, ReasonAqaEmbedded, SpeechCommandsEmbedded,
)
from audioprobe.runtime.provenance import sha256_tree

TINY = {
    "speech_commands": (s_sc, SpeechCommandsEmbedded(speakers=4, words=3, noise_seconds=1.0)),
    "librispeech": (s_libri, LibriSpeechEmbedded(speakers=3, utterances=2, min_seconds=1.0, max_seconds=3.0)),
    "esc50": (s_esc50, Esc50Embedded(classes=3, clips_per_fold=1)),
    "musan": (s_musan, MusanEmbedded(music=2, noise=2, speech=2, seconds=1.0)),
    "reasonaqa": (s_raqa, ReasonAqaEmbedded(rows=60, clips=10)),
}


@pytest.fixture(scope="module")
def written_twice(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every tiny dataset written twice, more than a second apart (eSpeak's clock-seeded noise)."""
    base = tmp_path_factory.mktemp("synth")
    for run in ("a", "b"):
        for name, (mod, cfg) in TINY.items():
            mod.write(base / run / name, cfg)
        if run == "a":
            time.sleep(1.1)
    return {name: (base / "a" / name, base / "b" / name) for name in TINY}


@pytest.mark.parametrize("name", list(TINY))
def test_written_twice_byte_identical(written_twice, name):
    a, b = written_twice[name]
    files = [p for p in a.rglob("*") if p.is_file()]
    assert len(files) >= 5
    assert sha256_tree(a) == sha256_tree(b)


def test_another_seed_gives_another_corpus(written_twice, tmp_path):
    mod, cfg = TINY["esc50"]
    mod.write(tmp_path / "esc", cfg.model_copy(update={"seed": 1}))
    assert sha256_tree(tmp_path / "esc") != sha256_tree(written_twice["esc50"][0])


BREATHY = Voice(language="en-us", variant="f5", rate=150, pitch=60, pitch_range=50)


def test_breathy_voice_is_identical_across_a_clock_tick():
    """f5 mixes in noise that eSpeak seeds from the clock; the seeded call makes it time-free."""
    jobs = [SpeakJob("hello sheila, the house is quiet", BREATHY)]
    (sr1, (a,)), = list(speak_batches([jobs], processes=1))
    time.sleep(1.1)
    (sr2, (b,)), = list(speak_batches([jobs], processes=1))
    assert sr1 == sr2 == 22050
    assert a.size > 0.5 * sr1 and np.abs(a).max() > 0.05
    assert np.array_equal(a, b)


def test_speak_batches_independent_of_other_batches():
    target = [SpeakJob("marvin", BREATHY), SpeakJob("forward", Voice("en-gb-x-rp", "m3", 170, 40, 30))]
    other1 = [SpeakJob("a long sentence spoken first to change intonation state", Voice("en-us", "klatt", 200, 70, 80))]
    other2 = [SpeakJob("zero", Voice("en", "croak", 120, 30, 20)), SpeakJob("nine", BREATHY)]
    alone = list(speak_batches([target], processes=1))[0][1]
    after = list(speak_batches([other1, other2, target], processes=2))[2][1]
    before = list(speak_batches([target, other1], processes=2))[0][1]
    for x, y, z in zip(alone, after, before):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    assert not np.array_equal(alone[0][: alone[1].size], alone[1][: alone[0].size])  # not trivially equal


# --------------------------------------------------------------- speech commands
@pytest.mark.parametrize("n", [3, 4, 10, 24, 50])
def test_speaker_ids_cover_validation_and_test(n):
    ids = s_sc.speaker_ids(0, n)
    assert len(ids) == len(set(ids)) == n and ids == sorted(ids)
    assert all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids)
    splits = [sc.which_set(f"{i}_nohash_0.wav") for i in ids]
    assert splits.count("validation") >= max(1, round(0.1 * n))
    assert splits.count("testing") >= max(1, round(0.1 * n))
    assert s_sc.speaker_ids(1, n) != ids


def test_speech_commands_lists_equal_which_set(written_twice):
    root = written_twice["speech_commands"][0]
    wavs = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav")
                  if p.parent.name != sc.BACKGROUND)
    assert len(wavs) == 4 * 3
    val = (root / "validation_list.txt").read_text().split()
    test = (root / "testing_list.txt").read_text().split()
    assert val == sorted(w for w in wavs if sc.which_set(w) == "validation")
    assert test == sorted(w for w in wavs if sc.which_set(w) == "testing")
    assert val and test
    for w in wavs:
        info = sf.info(str(root / w))
        assert (info.samplerate, info.frames, info.channels) == (16000, 16000, 1)
    assert sorted(p.name for p in (root / sc.BACKGROUND).glob("*.wav")) == sorted(sc.BACKGROUND_FILES)


# --------------------------------------------------------------- librispeech
def test_librispeech_durations_and_transcripts(written_twice):
    root = written_twice["librispeech"][0]
    cfg = TINY["librispeech"][1]
    flacs = sorted(root.glob("train-clean-100/*/*/*.flac"))
    assert len(flacs) == cfg.speakers * cfg.utterances
    for f in flacs:
        info = sf.info(str(f))
        assert info.samplerate == 16000
        assert cfg.min_seconds <= info.frames / info.samplerate <= cfg.max_seconds, f
    for trans in root.glob("train-clean-100/*/*/*.trans.txt"):
        ids = [ln.split(" ", 1)[0] for ln in trans.read_text().splitlines()]
        assert sorted(ids) == sorted(p.stem for p in trans.parent.glob("*.flac"))


def test_librispeech_default_length_range(tmp_path):
    cfg = LibriSpeechEmbedded(speakers=1, utterances=2, seed=3)
    s_libri.write(tmp_path, cfg)
    secs = [sf.info(str(f)).duration for f in tmp_path.rglob("*.flac")]
    assert len(secs) == 2 and all(3.0 <= s <= 12.0 for s in secs)


# --------------------------------------------------------------- esc50
def test_esc50_csv_rows_match_files(written_twice):
    root = written_twice["esc50"][0]
    with open(root / "meta" / "esc50.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    assert sorted(r["filename"] for r in rows) == sorted(p.name for p in (root / "audio").iterdir())
    for r in rows:
        fold, src, take, target = r["filename"].removesuffix(".wav").split("-")
        assert (fold, src, take, target) == (r["fold"], r["src_file"], r["take"], r["target"])
        assert sounds.ESC50_CLASSES[r["category"]][0] == int(r["target"])
        assert r["esc10"] == str(r["category"] in s_esc50.ESC10)
        assert sf.info(str(root / "audio" / r["filename"])).duration == 5.0
    assert {r["fold"] for r in rows} == {"1", "2", "3", "4", "5"}


# --------------------------------------------------------------- reasonaqa
_CAPTION = re.compile(r"^the sound of (?P<name>.+), (?P<loud>loud|quiet), (?P<sec>\d+\.\d) seconds$")


def _cap(c: str) -> dict:
    m = _CAPTION.match(c)
    assert m, c
    return {"name": m["name"], "loud": m["loud"], "sec": float(m["sec"])}


def test_reasonaqa_rows_right_by_construction(written_twice):
    root = written_twice["reasonaqa"][0]
    rows = {s: json.loads((root / f"{s}.json").read_text()) for s in reasonaqa.SPLITS}
    all_rows = [r for rs in rows.values() for r in rs]
    assert all(rows.values()) and len(all_rows) >= 50
    assert len({r["taskname"] for r in all_rows}) >= 4
    assert {r["subtype"] for r in all_rows} == {"open", "source", "presence", "same_source", "longer", "louder",
                                                "loudness", "duration", "nature"}
    for r in all_rows:
        assert set(r) == set(reasonaqa.FIELDS)
        c1 = _cap(r["caption1"])
        assert Path(r["filepath1"]).stem.rsplit("_", 1)[0].replace("_", " ") == c1["name"]
        assert (root / r["filepath1"]).is_file()
        if r["filepath2"]:
            c2 = _cap(r["caption2"])
            assert r["filepath2"] != r["filepath1"]
        sub, ans = r["subtype"], r["answer"]
        if sub == "open":
            assert ans == c1["name"]
        elif sub == "source":
            options = dict(re.findall(r"([ABCD])\) (.+?)(?= [ABCD]\)|$)", r["input"]))
            assert options[ans] == c1["name"] and len(options) == 4
        elif sub == "presence":
            asked = re.match(r"Is there (.+) in this recording\?", r["input"])[1]
            assert ans == ("yes" if asked == c1["name"] else "no")
        elif sub == "same_source":
            assert ans == ("yes" if c1["name"] == c2["name"] else "no")
        elif sub == "longer":
            assert c1["sec"] != c2["sec"] and ans == ("first" if c1["sec"] > c2["sec"] else "second")
        elif sub == "louder":
            if c1["loud"] != c2["loud"]:
                assert ans == ("first" if c1["loud"] == "loud" else "second")
            else:
                assert ans in ("first", "second")
        elif sub == "loudness":
            assert ans == c1["loud"]
        elif sub == "duration":
            assert ans == ("yes" if c1["sec"] > 5.0 else "no")
        elif sub == "nature":  # answerable from the question text alone: the named sound, not the clip's
            named = re.match(r"Is (.+) a sound of nature\?", r["input"])[1]
            assert ans == ("yes" if named.replace(" ", "_") in s_raqa.NATURE else "no")
        else:
            raise AssertionError(f"unknown subtype {sub}")


def test_reasonaqa_no_clip_shared_between_splits(written_twice):
    root = written_twice["reasonaqa"][0]
    used = {}
    for s in reasonaqa.SPLITS:
        rows = reasonaqa.load_split(root, s)
        used[s] = {r[k] for r in rows for k in ("filepath1", "filepath2") if r[k]}
    assert used["train"] and used["val"] and used["test"]
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]
    on_disk = {p.relative_to(root).as_posix() for p in (root / "audio").glob("*.wav")}
    assert set().union(*used.values()) <= on_disk


def test_reasonaqa_one_clip_split_terminates(tmp_path):
    """clips=4 leaves one clip in val and test: questions must not need two different clips."""

    def _hung(*_):
        raise TimeoutError("reasonaqa synth did not finish: a one-clip split loops forever")

    old = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(60)
    try:
        s_raqa.write(tmp_path, ReasonAqaEmbedded(rows=40, clips=4))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    for s in ("val", "test"):
        rows = reasonaqa.load_split(tmp_path, s)
        assert rows and all(r["filepath2"] == "" for r in rows)


def test_reasonaqa_scan_names_a_missing_split(tmp_path):
    row = {k: "" for k in reasonaqa.FIELDS} | {"filepath1": "a.wav", "input": "q", "answer": "a"}
    sf.write(str(tmp_path / "a.wav"), np.zeros(1600, np.float32), 16000)
    for split in ("train", "val"):
        (tmp_path / f"{split}.json").write_text(json.dumps([row]))
    _, _, problems = reasonaqa.scan(tmp_path)
    assert [p.what for p in problems] == ["no JSON file for the test split (found train, val)"]
    (tmp_path / "test.json").write_text(json.dumps([row]))
    assert reasonaqa.scan(tmp_path)[2] == []
