"""The clip table the audio-LLM stages read: columns, labels, conditions, seeded subsets, bad files."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audioprobe.audio.io import write_audio
from audioprobe.detect.llm.clips import conditions, read_table, speech_targets
from audioprobe.detect.llm.systems import load_clips, subset, system_name
from audioprobe.detect.llm.tiny import build_processor
from audioprobe.runtime.errors import DataError


def table(n: int = 8) -> pl.DataFrame:
    return pl.DataFrame({
        "clip_id": [f"c{i}" for i in range(n)], "split": ["train", "dev"] * (n // 2),
        "label": ["SPEECH", "SPEECH", "NONSPEECH", "NONSPEECH"] * (n // 4),
        "duration_ms": [200, 500] * (n // 2), "snr_db": [0.0] * (n // 2) + [10.0] * (n // 2),
        "audio": [f"audio/c{i}.wav" for i in range(n)],
    })


def test_read_table_checks_columns_and_labels(tmp_path):
    p = tmp_path / "clips.parquet"
    table().write_parquet(p)
    t = read_table(p, ("dev",))
    assert t.height == 4 and set(t["split"]) == {"dev"}
    assert speech_targets(t).tolist() == [1, 0, 1, 0]
    table().drop("audio").write_parquet(p)
    with pytest.raises(DataError, match=r"clips.parquet: missing column\(s\) audio"):
        read_table(p)
    table().with_columns(pl.lit("MAYBE").alias("label")).write_parquet(p)
    with pytest.raises(DataError, match="SPEECH or NONSPEECH"):
        read_table(p)
    with pytest.raises(DataError, match="run detect_dataset"):
        read_table(tmp_path / "nope.parquet")


def test_conditions_are_duration_by_snr_cells():
    c = conditions(table())
    assert len(np.unique(c)) == 4
    assert c[0] == c[2] and c[0] != c[1] and c[0] != c[4]


def test_subset_is_seeded_and_keeps_order():
    t = pl.concat([table(40)])
    a, b = subset(t, "train", 5, 3), subset(t, "train", 5, 3)
    assert a["clip_id"].to_list() == b["clip_id"].to_list() and a.height == 5
    ids = [int(x[1:]) for x in a["clip_id"]]
    assert ids == sorted(ids)
    assert subset(t, "train", 0, 3).height == 20
    assert system_name("lora", "opro") == "llm_lora_opro"


def test_load_clips_lists_every_bad_file(tmp_path):
    t = table(4)
    (tmp_path / "audio").mkdir()
    write_audio(tmp_path / "audio/c0.wav", np.zeros(3200, np.float32) + 0.1, 16000)
    write_audio(tmp_path / "audio/c1.wav", np.zeros(8000, np.float32) + 0.1, 8000)  # wrong rate
    (tmp_path / "audio/c2.wav").write_bytes(b"not audio")
    with pytest.raises(DataError, match=r"3 unreadable clip\(s\).*c1.wav.*c2.wav.*c3.wav"):
        load_clips(t, tmp_path, build_processor(400))
