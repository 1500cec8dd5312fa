"""detect hygiene: the WebRTC activity measure, the keep rule on params thresholds, rebalancing."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import webrtcvad

from audioprobe.detect.hygiene import counts, drops, measure, rebalance, webrtc_activity
from audioprobe.detect.params import DetectHygiene
from audioprobe.runtime.errors import DataError

SR = 16000


def test_activity_of_silence_and_of_a_too_short_clip_is_zero():
    assert webrtc_activity(webrtcvad.Vad(3), np.zeros(SR // 2, np.float32), 30) == 0.0
    assert webrtc_activity(webrtcvad.Vad(3), np.ones(100, np.float32) * 0.5, 30) == 0.0


def test_activity_counts_whole_frames():
    rng = np.random.default_rng(0)
    loud = (0.5 * rng.standard_normal(SR)).astype(np.float32)
    loud[: SR // 2] = 0.0  # first half digital silence
    a = webrtc_activity(webrtcvad.Vad(3), loud, 30)
    assert 0.4 <= a <= 0.6  # WebRTC (mode 3) flags loud noise as speech: the reason it cannot vet non-speech


def _candidates(tmp_path, acts_speech, acts_non):
    rows = []
    for label, acts in (("SPEECH", acts_speech), ("NONSPEECH", acts_non)):
        for i, a in enumerate(acts):
            cid = f"{label[0]}{i:02d}"
            wave = np.zeros(3200, np.float32)
            n_loud = int(round(a * 6)) * 480  # a fraction of the six 30 ms frames made loud
            if n_loud:  # loud frames last: WebRTC's hangover would otherwise flag the silence after them
                wave[-n_loud:] = 0.5 * np.random.default_rng(i).standard_normal(n_loud)
            sf.write(tmp_path / f"{cid}.wav", wave, SR)
            rows.append(dict(clip_id=cid, split="test", label=label, duration_ms=200, snr_db=0.0,
                             nonspeech_type="" if label == "SPEECH" else ("music" if i % 2 else "noise"),
                             source_dataset="librispeech" if label == "SPEECH" else "musan",
                             clean=f"{cid}.wav"))
    return pl.DataFrame(rows)


def test_keep_rule_follows_the_params_thresholds(tmp_path):
    t = _candidates(tmp_path, [1.0, 1.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0])
    m = measure(t, tmp_path, DetectHygiene(speech_min_active=0.7, nonspeech_max_active=0.05))
    got = dict(zip(m["clip_id"], m["passes"]))
    assert got == {"S00": True, "S01": True, "S02": False, "S03": False,
                   "N00": True, "N01": True, "N02": False, "N03": True}
    relaxed = measure(t, tmp_path, DetectHygiene(speech_min_active=0.4, nonspeech_max_active=1.0))
    assert relaxed.filter(pl.col("label") == "NONSPEECH")["passes"].all()
    assert dict(zip(relaxed["clip_id"], relaxed["passes"]))["S02"] is True


def test_rebalance_keeps_the_quota_round_robin_and_reports_drops(tmp_path):
    t = _candidates(tmp_path, [1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0])
    m = measure(t, tmp_path, DetectHygiene(nonspeech_max_active=0.05))  # the origin rule: N03 fails
    kept = rebalance(m, {"train": 0, "dev": 0, "test": 2})
    assert kept.height == 4
    ns = kept.filter(pl.col("label") == "NONSPEECH")
    assert sorted(ns["nonspeech_type"]) == ["music", "noise"]  # one of each type, not two noise
    d = drops(m, kept)
    assert d["candidates"].sum() == 8 and d["failed_vad"].sum() == 2 and d["kept"].sum() == 4
    c = counts(kept)
    assert c["test"].to_list() == [2, 2] and c["total"].sum() == 4
    with pytest.raises(DataError, match="need 4; rerun detect_dataset .*max_oversample"):
        rebalance(m, {"train": 0, "dev": 0, "test": 4})
