"""Layout loaders against a tiny embedded corpus and the real fixtures (../shared/fixtures)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioprobe.audio.io import check_audio_files
from audioprobe.data import esc50, librispeech, musan, reasonaqa
from audioprobe.data import speech_commands as sc
from audioprobe.data.synth import esc50 as s_esc50
from audioprobe.data.synth import librispeech as s_libri
from audioprobe.data.synth import musan as s_musan
from audioprobe.data.synth import reasonaqa as s_raqa
from audioprobe.data.synth import sounds
from audioprobe.data.synth import speech_commands as s_sc
from audioprobe.runtime.errors import DataError
from audioprobe.data.params import (
    Esc50Embedded, LibriSpeechEmbedded, MusanEmbedded, ReasonAqaEmbedded, SpeechCommandsEmbedded,
)

SC_CFG = SpeechCommandsEmbedded(speakers=4, words=3, noise_seconds=1.0)
LS_CFG = LibriSpeechEmbedded(speakers=3, utterances=2, min_seconds=1.0, max_seconds=3.0)
ESC_CFG = Esc50Embedded(classes=3, clips_per_fold=1)
MUSAN_CFG = MusanEmbedded(music=2, noise=3, speech=2, seconds=1.0)
RAQA_CFG = ReasonAqaEmbedded(rows=40, clips=8)


@pytest.fixture(scope="session")
def embedded(tmp_path_factory) -> dict[str, Path]:
    """Each dataset written once by the synthesizer with tiny params."""
    base = tmp_path_factory.mktemp("embedded")
    roots = {}
    for name, mod, cfg in [("speech_commands", s_sc, SC_CFG), ("librispeech", s_libri, LS_CFG),
                           ("esc50", s_esc50, ESC_CFG), ("musan", s_musan, MUSAN_CFG),
                           ("reasonaqa", s_raqa, RAQA_CFG)]:
        roots[name] = base / name
        mod.write(roots[name], cfg)
    return roots


# ------------------------------------------------------------------ speech commands
def test_speech_commands_embedded(embedded):
    root = embedded["speech_commands"]
    clips = sc.list_clips(root)
    assert len(clips) == 4 * 3
    assert sorted({c.word for c in clips}) == list(sc.WORDS[:3])
    assert clips == sorted(clips, key=lambda c: c.relpath)
    speakers = {c.speaker for c in clips}
    assert len(speakers) == 4
    for spk in speakers:  # one speaker never straddles splits
        assert len({c.split for c in clips if c.speaker == spk}) == 1
    official = {"training": "train", "validation": "validation", "testing": "test"}
    assert all(c.split == official[sc.which_set(c.relpath)] for c in clips)
    assert {"validation", "test"} <= {c.split for c in clips}
    files = sc.audio_files(root)
    assert len(files) == 12 + len(sc.BACKGROUND_FILES)
    assert sorted(f.name for f in files if f.parent.name == sc.BACKGROUND) == sorted(sc.BACKGROUND_FILES)
    wave = sc.load_clip(root, clips[0].relpath)
    assert wave.shape == (16000,) and wave.dtype == np.float32 and np.abs(wave).max() > 0.01


def test_speech_commands_load_clip_pads_and_trims(tmp_path):
    from audioprobe.audio.io import write_audio

    root = tmp_path / "sc"
    (root / "yes").mkdir(parents=True)
    x = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)
    write_audio(root / "yes" / "abcd1234_nohash_0.wav", x, 16000)
    padded = sc.load_clip(root, "yes/abcd1234_nohash_0.wav")
    assert padded.shape == (16000,) and np.allclose(padded[:8000], x, atol=2**-15) and not padded[8000:].any()
    trimmed = sc.load_clip(root, "yes/abcd1234_nohash_0.wav", length=4000)
    assert trimmed.shape == (4000,) and np.allclose(trimmed, x[:4000], atol=2**-15)


def test_speech_commands_layout_errors(tmp_path):
    (tmp_path / "yes").mkdir()
    with pytest.raises(DataError, match="validation_list.txt"):
        sc.list_clips(tmp_path)
    (tmp_path / "validation_list.txt").write_text("")
    (tmp_path / "testing_list.txt").write_text("")
    with pytest.raises(DataError, match="no <word>"):
        sc.list_clips(tmp_path)
    (tmp_path / "yes" / "not-a-speaker.wav").write_bytes(b"")
    with pytest.raises(DataError, match="not-a-speaker.wav"):
        sc.list_clips(tmp_path)


def test_speech_commands_fixture(fixtures_dir):
    root = fixtures_dir / "speech_commands"
    clips = sc.list_clips(root)
    assert len(clips) == 679
    assert Counter(c.split for c in clips) == {"train": 509, "validation": 76, "test": 94}
    assert {c.word for c in clips} == set(sc.WORDS) and len(sc.WORDS) == 35 and list(sc.WORDS) == sorted(sc.WORDS)
    assert len({c.speaker for c in clips}) == 374
    listed_val = set((root / "validation_list.txt").read_text().split())
    assert {c.relpath for c in clips if c.split == "validation"} == listed_val
    files = sc.audio_files(root)
    assert len(files) == 679 + 6
    wave = sc.load_clip(root, clips[0].relpath)
    assert wave.shape == (16000,) and wave.dtype == np.float32
    # the fixture's own manifest agrees with the loader on word and speaker
    rows = [ln.split(",") for ln in (root / "manifest.csv").read_text().splitlines()[1:]]
    by_path = {c.relpath: c for c in clips}
    for path, label, speaker, *_ in rows:
        assert by_path[path].word == label and by_path[path].speaker == speaker


def _speaker(entry: str) -> str:
    return entry.split("/")[1].split("_nohash_")[0]


def test_which_set_reproduces_official_v001_lists(fixtures_dir):
    """The official hash rule gives exactly the published v0.01 validation and testing lists."""
    off = fixtures_dir / "speech_commands" / "official_v0.01"
    val = (off / "validation_list.txt").read_text().split()
    test = (off / "testing_list.txt").read_text().split()
    assert len(val) > 6000 and len(test) > 6000
    assert {sc.which_set(e) for e in val} == {"validation"}
    assert {sc.which_set(e) for e in test} == {"testing"}
    # and the converse on the fixture's clips: 'training' speakers are in neither official list
    val_spk, test_spk = {_speaker(e) for e in val}, {_speaker(e) for e in test}
    clips = sc.list_clips(fixtures_dir / "speech_commands")
    for c in clips:
        split = sc.which_set(c.relpath)
        if split == "training":
            assert c.speaker not in val_spk | test_spk, c.relpath
        elif split == "validation":
            assert c.speaker not in test_spk
    assert sc.which_set("yes/0c40e715_nohash_3.wav") == "testing"  # bed/0c40e715 is in the official test list
    assert sc.which_set("whatever/026290a7_nohash_9.wav") == "validation"


# ------------------------------------------------------------------ librispeech
def test_librispeech_embedded(embedded):
    root = embedded["librispeech"]
    utts = librispeech.list_utterances(root)
    assert len(utts) == 3 * 2
    assert {u.subset for u in utts} == {"train-clean-100"}
    assert librispeech.list_utterances(root, "train-clean-100") == utts
    assert librispeech.list_utterances(root, "all") == utts
    for u in utts:
        assert u.utt_id == f"{u.speaker}-{u.chapter}-{u.utt_id.split('-')[2]}"
        assert u.relpath == f"{u.subset}/{u.speaker}/{u.chapter}/{u.utt_id}.flac"
        assert u.transcript and u.transcript == u.transcript.upper()
    wave, sr = librispeech.load_utterance(root, utts[0])
    assert sr == 16000 and wave.dtype == np.float32 and 1.0 <= wave.size / sr <= 3.0
    speakers = librispeech.read_speakers(root)
    assert set(speakers) == {u.speaker for u in utts}
    assert all(s["subset"] == "train-clean-100" and s["sex"] in "MF" for s in speakers.values())
    with pytest.raises(DataError, match="dev-clean"):
        librispeech.list_utterances(root, "dev-clean")


def test_librispeech_fixture(fixtures_dir):
    root = fixtures_dir / "LibriSpeech"
    assert librispeech.subsets(root) == ["test-clean", "test-other", "train-clean-100"]
    utts = librispeech.list_utterances(root)
    by_subset = {s: [u for u in utts if u.subset == s] for s in librispeech.subsets(root)}
    assert {s: len({u.speaker for u in us}) for s, us in by_subset.items()} == {
        "test-clean": 1, "test-other": 10, "train-clean-100": 80}
    assert len({u.speaker for u in utts}) == 91
    assert {s: len(us) for s, us in by_subset.items()} == {"test-clean": 4, "test-other": 100, "train-clean-100": 80}
    assert all(u.transcript is None for u in by_subset["train-clean-100"])
    assert all(u.transcript for u in by_subset["test-clean"] + by_subset["test-other"])
    first = by_subset["test-clean"][0]
    assert first.utt_id == "1089-134686-0000" and first.transcript.startswith("HE HOPED THERE WOULD BE STEW")
    subset_list = librispeech.list_utterances(root, ["test-clean", "test-other"])
    assert len(subset_list) == 104
    wave, sr = librispeech.load_utterance(root, first)
    assert sr == 16000 and wave.size == sf.info(str(root / first.relpath)).frames
    speakers = librispeech.read_speakers(root)
    assert len(speakers) > 2000  # the full official SPEAKERS.TXT
    assert speakers["1089"]["subset"] == "test-clean"
    assert all(speakers[u.speaker]["subset"] == u.subset for u in utts)


def test_librispeech_bad_name(tmp_path):
    d = tmp_path / "train-clean-100" / "19" / "198"
    d.mkdir(parents=True)
    (d / "20-198-0000.flac").write_bytes(b"")
    with pytest.raises(DataError, match="20-198-0000.flac"):
        librispeech.list_utterances(tmp_path)


# ------------------------------------------------------------------ esc50
def _check_esc50(root: Path, clips: list[esc50.Clip]) -> None:
    for c in clips:
        fold, src, take, target = Path(c.relpath).stem.split("-")
        assert (int(fold), int(target)) == (c.fold, c.target)
    cats = {}
    for c in clips:
        cats.setdefault(c.target, set()).add(c.category)
    assert all(len(v) == 1 for v in cats.values())  # one category per target


def test_esc50_embedded(embedded):
    root = embedded["esc50"]
    clips = esc50.list_clips(root)
    assert len(clips) == 3 * 5 * 1
    assert Counter(c.fold for c in clips) == {f: 3 for f in range(1, 6)}
    assert {c.category for c in clips} == set(sounds.ESC50_ORDER[:3])
    assert all(sounds.ESC50_CLASSES[c.category][0] == c.target for c in clips)
    _check_esc50(root, clips)
    wave, sr = esc50.load_clip(root, clips[0])
    assert sr == 16000 and wave.size == 5 * 16000


def test_esc50_fixture(fixtures_dir):
    root = fixtures_dir / "ESC-50"
    clips = esc50.list_clips(root)
    assert len(clips) == 250
    assert len({c.target for c in clips}) == 50 and len({c.category for c in clips}) == 50
    assert Counter(c.fold for c in clips) == {f: 50 for f in range(1, 6)}
    _check_esc50(root, clips)
    dog = [c for c in clips if c.category == "dog"]
    assert {c.target for c in dog} == {0} and len(dog) == 5
    wave, sr = esc50.load_clip(root, clips[0])
    assert sr == 16000 and wave.size == 5 * 16000


def test_esc50_missing_meta_or_file(tmp_path, fixtures_dir):
    with pytest.raises(DataError, match="esc50.csv"):
        esc50.list_clips(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n1-1-A-0.wav,1,0,dog,True,1,A\n")
    with pytest.raises(DataError, match="1-1-A-0.wav"):
        esc50.list_clips(tmp_path)
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold\n")
    with pytest.raises(DataError, match="missing columns"):
        esc50.list_clips(tmp_path)


# ------------------------------------------------------------------ musan (embedded only)
def test_musan_embedded(embedded):
    root = embedded["musan"]
    items = musan.list_items(root)
    assert Counter(i.category for i in items) == {"music": 2, "noise": 3, "speech": 2}
    assert {(i.category, i.source) for i in items} == {("music", "fma"), ("noise", "free-sound"),
                                                       ("speech", "librivox")}
    assert [i.relpath for i in musan.list_items(root, "noise")] == [
        f"noise/free-sound/noise-free-sound-{k:04d}.wav" for k in range(3)]
    assert check_audio_files(musan.audio_files(root), expected_sr=16000) == []


def test_musan_rejects_other_layouts(fixtures_dir):
    with pytest.raises(DataError, match="not a MUSAN layout"):
        musan.list_items(fixtures_dir / "ESC-50")


# ------------------------------------------------------------------ reasonaqa
def test_reasonaqa_embedded(embedded):
    root = embedded["reasonaqa"]
    files = reasonaqa.split_files(root)
    assert set(files) == {"train", "val", "test"}
    rows = {s: reasonaqa.load_split(root, s) for s in files}
    assert all(rows[s] for s in rows)
    assert sum(len(r) for r in rows.values()) >= 30
    for rs in rows.values():
        for r in rs:
            assert set(reasonaqa.FIELDS) <= set(r)
    audio = reasonaqa.audio_files(root)
    assert audio and all(p.is_file() for p in audio)
    assert len(audio) == len({p.name for p in audio}) <= 8


def _mellow_row(task, f1, f2, c1, c2, q, a, sub):
    return dict(taskname=task, filepath1=f1, filepath2=f2, caption1=c1, caption2=c2, input=q, answer=a,
                subtype=sub)


def test_reasonaqa_fixture_built_from_clotho(fixtures_dir, tmp_path):
    """A Mellow-schema JSON over the real Clotho clips (no real ReasonAQA JSON exists offline)."""
    clotho = fixtures_dir / "clotho_aqa"
    root = tmp_path / "ReasonAQA"
    root.mkdir()
    (root / "clotho").symlink_to(clotho, target_is_directory=True)  # read in place, never copied
    ev = sorted((clotho / "clotho_audio_files" / "evaluation").glob("*.flac"))
    with open(clotho / "clotho_captions_evaluation.csv", newline="") as f:
        caps = {Path(r["file_name"]).stem: r["caption_1"] for r in csv.DictReader(f)}
    rel = [f"clotho/clotho_audio_files/evaluation/{p.name}" for p in ev]
    test_rows = [_mellow_row("open_qa", r, "", caps.get(Path(r).stem, ""), "", "What do you hear?", "x", "open")
                 for r in rel[:4]]
    test_rows.append(_mellow_row("binary", rel[0], "clotho/mellow_examples/1.flac", "a", "b",
                                 "Are these the same?", "no", "compare"))
    val_rows = [_mellow_row("open_qa", rel[5], "", "", "", "?", "y", "open")]
    (root / "clotho_test.json").write_text(json.dumps(test_rows))
    (root / "val_clotho.json").write_text(json.dumps(val_rows))
    files = reasonaqa.split_files(root)
    assert set(files) == {"test", "val"}
    got = reasonaqa.load_split(root, "test")
    assert got == test_rows and got[0]["caption1"]
    with pytest.raises(DataError, match="split 'train'"):
        reasonaqa.load_split(root, "train")
    with pytest.raises(DataError, match="no JSON file for the train split"):  # the download check needs all three
        reasonaqa.audio_files(root)
    (root / "train_clotho.json").write_text(json.dumps(val_rows))
    audio = reasonaqa.audio_files(root)
    assert len(audio) == 6 and all(sf.info(str(p)).samplerate == 16000 for p in audio)
    assert check_audio_files(audio) == []
    # a row pointing at a missing file, or lacking a field, is refused with its row number
    (root / "clotho_test.json").write_text(json.dumps([*test_rows, _mellow_row("x", "nope.flac", "", "", "", "", "", "")]))
    with pytest.raises(DataError, match="nope.flac: named by clotho_test.json row 5 filepath1 but missing"):
        reasonaqa.load_split(root, "test")
    del test_rows[0]["subtype"]
    (root / "clotho_test.json").write_text(json.dumps(test_rows))
    with pytest.raises(DataError, match=r"row 0: lacks fields \['subtype'\]"):
        reasonaqa.load_split(root, "test")
    (root / "clotho_test.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        reasonaqa.load_split(root, "test")


def test_fixture_audio_is_all_readable(fixtures_dir):
    """Every real fixture file of the four loaders passes the audio checks (no false alarms)."""
    files = (sc.audio_files(fixtures_dir / "speech_commands")[::7]
             + librispeech.audio_files(fixtures_dir / "LibriSpeech")[::3]
             + esc50.audio_files(fixtures_dir / "ESC-50")[::5])
    assert len(files) > 200
    assert check_audio_files(files, expected_sr=16000) == []
