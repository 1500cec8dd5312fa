"""The encoder store: what write_store writes is what EncoderStore reads, item by item, keyed by
encoder + weights and by the audio's sha256; a resumed or interrupted run writes the same bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audioprobe.audio.io import write_audio
from audioprobe.encoders.mel import MelEncoder
from audioprobe.encoders.store import (
    FRAMES,
    EncoderStore,
    StoreItem,
    encoder_key,
    frame_energy,
    read_resampled,
    write_store,
)
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.provenance import sha256_file

SR = 16000


def _corpus(root, seconds=(1.3, 0.4, 2.0, 0.9, 1.1)) -> list[StoreItem]:
    rng = np.random.default_rng(0)
    items = []
    for i, s in enumerate(seconds):
        rel = f"a/{i:02d}.wav"
        write_audio(root / rel, (0.1 * rng.standard_normal(int(s * SR))).astype(np.float32), SR)
        items.append(StoreItem(f"item{i}", rel, s))
    return items


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_round_trip_every_item_its_own_frames_energy_and_hash(tmp_path):
    items = _corpus(tmp_path / "audio")
    enc = MelEncoder(sample_rate=SR, frame_rate=12.5, n_mels=16)
    summary = write_store(tmp_path / "audio", items, enc, tmp_path / "store", batch_size=2, block_size=3,
                          columns={"speaker": ["s0", "s1", "s0", "s2", "s1"]}, attrs={"data": {"source": "test"}},
                          progress=False)
    store = EncoderStore(tmp_path / "store")
    assert store.meta["key"] == encoder_key(enc) == summary["key"] and store.meta["data"] == {"source": "test"}
    assert store.index["item_id"].to_list() == [it.item_id for it in items]
    assert store.index["speaker"].to_list() == ["s0", "s1", "s0", "s2", "s1"]
    for i, it in enumerate(items):
        wave = read_resampled(tmp_path / "audio", it, SR)
        alone = enc.encode_batch([wave])[0]
        np.testing.assert_allclose(store.frames(i), alone, atol=1e-5)  # batched with others: padding only
        assert store.index["n_frames"][i] == enc.num_frames(wave.size) == store.frames(i).shape[0]
        assert store.index["audio_sha256"][i] == sha256_file(tmp_path / "audio" / it.path)
        lo, hi = store.offsets[i], store.offsets[i + 1]
        np.testing.assert_array_equal(store.energy[lo:hi], frame_energy(wave, enc.hop, hi - lo))
    assert store.meta["x_mean"] == pytest.approx(float(store.x.astype(np.float64).mean()), rel=1e-9)
    assert set(store.by_id()) == {it.item_id for it in items}
    assert not list(tmp_path.glob(".store*"))  # no partial store left behind


def test_the_key_follows_the_encoder_and_its_settings():
    a, b = MelEncoder(n_mels=16), MelEncoder(n_mels=32)
    assert encoder_key(a) == encoder_key(MelEncoder(n_mels=16)) != encoder_key(b)


def test_an_interrupted_run_resumes_to_the_same_bytes(tmp_path):
    items = _corpus(tmp_path / "audio")
    enc = MelEncoder(sample_rate=SR, frame_rate=12.5, n_mels=16)
    write_store(tmp_path / "audio", items, enc, tmp_path / "whole", batch_size=2, block_size=2, progress=False)
    calls, fail = [], [True]

    def load(it):
        calls.append(it.item_id)
        if it.item_id == "item4" and fail[0]:  # the third block fails on the first run
            raise RuntimeError("stopped")
        return read_resampled(tmp_path / "audio", it, SR)

    with pytest.raises(RuntimeError, match="stopped"):
        write_store(tmp_path / "audio", items, enc, tmp_path / "again", load=load, batch_size=2, block_size=2,
                    progress=False)
    assert not (tmp_path / "again").exists() and (tmp_path / ".again.partial" / FRAMES).is_dir()
    calls.clear()
    fail[0] = False
    summary = write_store(tmp_path / "audio", items, enc, tmp_path / "again", load=load, batch_size=2, block_size=2,
                          progress=False)
    assert summary["resumed_items"] == 4 and calls == ["item4"]  # two blocks were kept
    assert _files(tmp_path / "again") == _files(tmp_path / "whole")


def test_a_loader_setting_is_part_of_the_resume_key(tmp_path):
    """A partial store cut at 1 s is never resumed by a run that cuts at 0.5 s."""
    items = _corpus(tmp_path / "audio")
    enc = MelEncoder(sample_rate=SR, frame_rate=12.5, n_mels=16)

    def cut(s):
        return lambda it: read_resampled(tmp_path / "audio", it, SR, max_seconds=s)

    write_store(tmp_path / "audio", items, enc, tmp_path / "s", load=cut(1.0), load_key={"max_seconds": 1.0},
                batch_size=2, block_size=2, progress=False)
    short = write_store(tmp_path / "audio", items, enc, tmp_path / "s", load=cut(0.5), load_key={"max_seconds": 0.5},
                        batch_size=2, block_size=2, progress=False)
    assert short["resumed_items"] == 0 and max(EncoderStore(tmp_path / "s").index["seconds"]) == 0.5


def test_nan_frames_and_a_broken_store_are_one_line_errors(tmp_path):
    items = _corpus(tmp_path / "audio", seconds=(0.5, 0.5))
    enc = MelEncoder(sample_rate=SR, frame_rate=12.5, n_mels=16)

    def nan_load(it):
        return np.full(8000, np.nan, np.float32)

    with pytest.raises(DataError, match=r"mel encoder produced \d+ NaN values in 2 item\(s\): item0, item1"):
        write_store(tmp_path / "audio", items, enc, tmp_path / "s", load=nan_load, progress=False)
    with pytest.raises(DataError, match="not an encoder store"):
        EncoderStore(tmp_path / "nothing")
    write_store(tmp_path / "audio", items, enc, tmp_path / "ok", progress=False)
    meta = json.loads((tmp_path / "ok/encoder.json").read_text())
    assert meta["n_items"] == 2 and meta["name"] == "mel"
