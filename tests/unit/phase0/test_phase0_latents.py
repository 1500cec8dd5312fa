"""phase0 latents in the encoder store: utterance selection, frame energy, offsets, padded batches ==
batch-1, NaN guard, resume."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from audioprobe.audio.io import write_audio
from audioprobe.encoders.mel import MelEncoder
from audioprobe.runtime.errors import DataError
from audioprobe.encoders.store import EncoderStore, frame_energy, write_store
from audioprobe.phase0.latents import as_store_items, select_utterances

SR = 16000
HOP = 1280  # mel encoder default: 12.5 Hz at 16 kHz


def step_wave(levels: list[float], hop: int = HOP, tail: int = 0) -> np.ndarray:
    """Frame f alternates ±levels[f] (exact in PCM-16), so its RMS is levels[f]."""
    signs = np.where(np.arange(hop) % 2 == 0, 1.0, -1.0)
    wave = np.concatenate([lvl * signs for lvl in levels] + [np.full(tail, levels[-1])])
    return wave.astype(np.float32)


@pytest.fixture
def libri_root(tmp_path):
    """A LibriSpeech-layout folder: 3 speakers, 5 utterances (one shorter than 3 s)."""
    root = tmp_path / "LibriSpeech"
    spec = {  # utt id -> frame levels (each frame = HOP samples), + a partial tail
        "11-100-0000": ([0.25, 0.5] * 20, 0),
        "11-100-0001": ([0.125] * 45, 300),
        "22-200-0000": ([0.5, 0.25, 0.125] * 13, 17),
        "22-200-0001": ([0.25] * 10, 0),  # 0.8 s: dropped by min_seconds
        "33-300-0000": ([0.0625, 0.5] * 30, 1000),
    }
    waves = {}
    for uid, (levels, tail) in spec.items():
        spk, chap, _ = uid.split("-")
        wave = step_wave(levels, tail=tail)
        write_audio(root / "train-clean-100" / spk / chap / f"{uid}.flac", wave, SR)
        waves[uid] = wave
    return root, waves, spec


def test_frame_energy_is_rms_over_each_frames_samples():
    wave = step_wave([0.25, 0.5, 0.125], hop=4, tail=2)  # last frame: 2 real samples of 0.125
    np.testing.assert_allclose(frame_energy(wave, 4, 4), [0.25, 0.5, 0.125, 0.125], rtol=1e-6)
    np.testing.assert_allclose(frame_energy(np.array([3.0, 4.0], np.float32), 2, 1), [math.sqrt(12.5)])


def test_select_drops_short_utterances(libri_root):
    root, _, _ = libri_root
    items, n_short = select_utterances(root, "train-clean-100", 3.0)
    assert n_short == 1 and "22-200-0001" not in [it.utt.utt_id for it in items]
    assert [it.utt.utt_id for it in items] == sorted(it.utt.utt_id for it in items)
    with pytest.raises(DataError, match="min_seconds"):
        select_utterances(root, "all", 600.0)


def _write(root, items, enc, out, **kw):
    store_items, columns = as_store_items(items)
    return write_store(root, store_items, enc, out, columns=columns, progress=False, **kw)


def test_store_offsets_energy_and_batch_one_equality(libri_root, tmp_path):
    root, waves, spec = libri_root
    items, _ = select_utterances(root, ["train-clean-100"], 3.0)
    enc = MelEncoder()
    summary = _write(root, items, enc, tmp_path / "latents", batch_size=3, load_workers=2,
                     attrs={"data": {"source": "test"}})
    store = EncoderStore(tmp_path / "latents")
    x, energy, ts, off = store.x, store.energy, store.timestamps, store.offsets
    assert x.dtype == np.float32 and x.shape == (summary["n_frames"], 80)
    assert off.dtype == np.int64 and off.tolist() == summary["offsets"].tolist()
    assert off[0] == 0 and off[-1] == x.shape[0] == energy.shape[0] == ts.shape[0]
    meta = store.meta
    assert meta["hop"] == HOP and meta["dim"] == 80 and meta["frame_rate"] == 12.5
    assert meta["name"] == "mel" and meta["provenance"]["weights"] == "none"
    assert meta["data"] == {"source": "test"} and meta["n_items"] == len(items)
    for u, it in enumerate(items):
        uid = it.utt.utt_id
        rows = slice(off[u], off[u + 1])
        n = waves[uid].size
        assert off[u + 1] - off[u] == math.ceil(n / HOP)
        # energy: each full frame is ±level; a partial last frame holds the last level
        levels, tail = spec[uid]
        expect = levels + ([levels[-1]] if tail else [])
        np.testing.assert_allclose(energy[rows], expect, rtol=1e-4)
        np.testing.assert_allclose(ts[rows], np.arange(off[u + 1] - off[u]) * HOP / SR, rtol=1e-6)
        # padded, length-sorted batches give the latents of encoding this utterance alone
        alone = enc.encode(torch.from_numpy(waves[uid])[None])[0].numpy()
        np.testing.assert_allclose(x[rows], alone, atol=1e-5)
    table = store.index
    assert table["utterance_id"].to_list() == table["item_id"].to_list() == [it.utt.utt_id for it in items]
    assert table["offset"].to_list() == off[:-1].tolist()
    assert table["n_frames"].to_list() == np.diff(off).tolist()
    assert table["audio_path"][0] == "train-clean-100/11/100/11-100-0000.flac"
    assert table.schema["speaker_id"] == pl.String
    assert summary["x_mean"] == pytest.approx(float(x.astype(np.float64).mean()), rel=1e-6)
    assert summary["x_std"] == pytest.approx(float(x.astype(np.float64).std()), rel=1e-5)


class NanEncoder(MelEncoder):
    def encode(self, wave):
        out = super().encode(wave)
        out[:, 0, 0] = float("nan")
        return out


def test_nan_latents_stop_the_stage(libri_root, tmp_path):
    root, _, _ = libri_root
    items, _ = select_utterances(root, "train-clean-100", 3.0)
    with pytest.raises(DataError, match=r"NaN values in 4 item"):
        _write(root, items, NanEncoder(), tmp_path / "l", batch_size=2)


class CrashingEncoder(MelEncoder):
    """Fails on its n-th batch, like a run killed half-way."""

    def __init__(self, fail_at: int):
        super().__init__()
        self.calls, self.fail_at = 0, fail_at

    def encode(self, wave):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("killed")
        return super().encode(wave)


def test_interrupted_run_resumes_after_its_last_complete_block(libri_root, tmp_path):
    root, _, _ = libri_root
    items, _ = select_utterances(root, "train-clean-100", 3.0)
    kw = dict(batch_size=1, block_size=2)
    fresh = _write(root, items, MelEncoder(), tmp_path / "fresh", **kw)
    with pytest.raises(RuntimeError, match="killed"):
        _write(root, items, CrashingEncoder(fail_at=4), tmp_path / "again", **kw)
    again = CrashingEncoder(fail_at=-1)
    summary = _write(root, items, again, tmp_path / "again", **kw)
    assert summary["resumed_items"] == 2 and again.calls == 2  # block 1 was kept
    a, b = EncoderStore(tmp_path / "fresh"), EncoderStore(tmp_path / "again")
    for name in ("x", "energy", "timestamps", "offsets"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert summary["x_mean"] == pytest.approx(fresh["x_mean"]) and summary["x_std"] == pytest.approx(fresh["x_std"])
    # without resume (or with another config) the partial store is rebuilt from scratch
    with pytest.raises(RuntimeError, match="killed"):
        _write(root, items, CrashingEncoder(fail_at=3), tmp_path / "third", **kw)
    other = CrashingEncoder(fail_at=-1)
    assert _write(root, items, other, tmp_path / "third", resume=False, **kw)["resumed_items"] == 0
    assert other.calls == 4
