"""tier1_latents: mel / Mimi / EnCodec stores of phase0's utterances at native rates, in phase0's format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audioprobe.audio.io import write_audio
from audioprobe.encoders.store import EncoderStore
from audioprobe.phase0.latents import select_utterances
from audioprobe.phase0.tier1.rates import pool_utterances

REPO = Path(__file__).resolve().parents[3]
SR = 16000


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """data/raw/librispeech-like folder: 6 utterances of 1-2 s (one too short), 3 speakers."""
    raw = tmp_path_factory.mktemp("raw") / "librispeech"
    rng = np.random.default_rng(1)
    for u in range(6):
        spk = 10 + u % 3
        n = 4000 if u == 5 else SR + int(rng.integers(0, SR))  # the last one: 0.25 s, dropped
        wave = (0.1 * rng.standard_normal(n)).astype(np.float32)
        write_audio(raw / "LibriSpeech" / "train-clean-100" / str(spk) / "3" / f"{spk}-3-{u:04d}.flac", wave, SR)
    (raw / "source.json").write_text(json.dumps({"root": "LibriSpeech", "source": "test", "sha256": "1" * 64}))
    return raw


def _run(raw: Path, tmp: Path, encoder: str, tier1: str = "{}", **env_extra: str) -> subprocess.CompletedProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    params = tmp / "params.yaml"
    params.write_text("phase0:\n  latents: {subset: train-clean-100, min_seconds: 0.5, batch_size: 2, device: cpu, "
                      f"load_workers: 1}}\n  tier1: {tier1}\n")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "stages.phase0_tier1_latents", "--encoder", encoder, "--raw", str(raw),
         "--out", str(tmp / encoder), "--stats", str(tmp / f"latents_{encoder}.json"), "--params", str(params)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )


@pytest.mark.slow
def test_three_representations_share_utterances_and_the_common_rate(raw, tmp_path):
    expect = {"mel": (50.0, 320, 80, 16000, False), "mimi": (12.5, 1920, 32, 24000, True),
              "encodec": (75.0, 320, 32, 24000, True)}
    items, _ = select_utterances(raw / "LibriSpeech", "train-clean-100", 0.5)
    ids = [it.utt.utt_id for it in items]
    stores = {}
    for enc, (rate, hop, dim, sr, random) in expect.items():
        proc = _run(raw, tmp_path, enc)
        assert proc.returncode == 0, proc.stderr
        store = EncoderStore(tmp_path / enc)
        m = store.meta
        assert (m["frame_rate"], m["hop"], m["dim"], m["sample_rate"]) == (rate, hop, dim, sr)
        assert m["name"] == enc and m["data"] == {"source": "test", "sha256": "1" * 64}
        index = store.index
        assert index["utterance_id"].to_list() == ids  # phase0's selection: its splits apply
        off = store.offsets
        assert index["offset"].to_list() == off[:-1].tolist() and store.x.shape == (off[-1], dim)
        stats = json.loads((tmp_path / f"latents_{enc}.json").read_text())
        assert (stats["frame_rate"], stats["hop"], stats["dim"]) == (rate, hop, dim)
        assert stats["random_weights"] is random and stats["n_utterances"] == 5 and stats["n_utterances_too_short"] == 1
        assert stats["weights"]["weights"] == ("random-init" if random else "none")
        assert ("RANDOM weights" in proc.stderr) is random
        stores[enc] = (store.x, off, rate)
    # Pooled to 12.5 Hz, EnCodec has Mimi's frame count per utterance (same 24 kHz samples).
    _, enc_off = pool_utterances(*stores["encodec"][:2], 75.0, 12.5)
    np.testing.assert_array_equal(np.diff(enc_off), np.diff(stores["mimi"][1]))
    _, mel_off = pool_utterances(*stores["mel"][:2], 50.0, 12.5)
    assert np.abs(np.diff(mel_off) - np.diff(stores["mimi"][1])).max() <= 1  # 16 kHz vs resampled 24 kHz


def test_missing_encodec_weights_stop_with_one_line_and_no_output(raw, tmp_path):
    proc = _run(raw, tmp_path, "encodec", tier1="{encodec: {weights: facebook/encodec_24khz}}",
                HF_HUB_CACHE=str(tmp_path / "empty-hf-cache"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: phase0.tier1.encodec.weights = "), lines
    assert not (tmp_path / "encodec").exists() and not (tmp_path / "latents_encodec.json").exists()
