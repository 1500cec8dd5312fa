"""Encoder interface: shapes, frame counts vs hop, provenance, weights errors, mel values."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from audioprobe.audio.mel import mel_filterbank
from audioprobe.bench.encoders import main as bench_main
from audioprobe.encoders import build_encoder
from audioprobe.encoders.mel import MelEncoder
from audioprobe.encoders.mimi import load_mimi, resolve_weights
from audioprobe.runtime.errors import ParamsError, WeightsError
from audioprobe.phase0.params import Phase0Encoder
from audioprobe.runtime.provenance import RANDOM_INIT, sha256_file


def tiny_mimi(seed: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_mimi(RANDOM_INIT, "tiny", init_seed=seed)


def waves(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


# ------------------------------------------------------------------------------ mel
def test_mel_default_is_codec_rate_from_params():
    enc = build_encoder(Phase0Encoder(), param="phase0.encoder")  # the params.yaml defaults
    assert (enc.name, enc.sample_rate, enc.hop, enc.frame_rate, enc.dim) == ("mel", 16000, 1280, 12.5, 80)
    assert enc.provenance["weights"] == "none" and not enc.is_random


@pytest.mark.parametrize("n", [1, 1279, 1280, 1281, 16000 * 3 + 5])
def test_mel_frame_count_is_ceil_of_hop(n):
    enc = MelEncoder()
    out = enc.encode(torch.zeros(2, n))
    assert out.shape == (2, math.ceil(n / 1280), 80)
    assert enc.num_frames(n) == math.ceil(n / 1280)


def test_mel_matches_direct_stft_pooling():
    """Each frame = mean over its 8 log-mel frames (25 ms Hann, 10 ms hop, centred, zero tail)."""
    enc = MelEncoder(sample_rate=16000, frame_rate=12.5, n_mels=40)
    wave = waves([16000 * 2 + 700])[0]
    got = enc.encode(torch.from_numpy(wave)[None])[0].numpy()  # (F, 40)
    n_fft, hop, pool, frames = 400, 160, 8, math.ceil(wave.size / 1280)
    padded = np.concatenate([wave, np.zeros((frames + 1) * 1280 - wave.size, np.float32)]).astype(np.float64)
    padded = np.pad(padded, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    fb = mel_filterbank(n_fft // 2 + 1, 40, 16000).numpy().astype(np.float64)
    expect = np.zeros((frames, 40))
    for f in range(frames):
        logs = []
        for j in range(f * pool, (f + 1) * pool):
            spec = np.fft.rfft(padded[j * hop : j * hop + n_fft] * window)
            logs.append(np.log((np.abs(spec) ** 2) @ fb + 1e-9))
        expect[f] = np.mean(logs, axis=0)
    np.testing.assert_allclose(got, expect, atol=2e-3, rtol=1e-4)


def test_mel_frame_rate_must_divide_into_stft_hops():
    with pytest.raises(ParamsError, match="phase0.encoder.mel_sample_rate"):
        build_encoder({"name": "mel", "mel_sample_rate": 16000, "mel_frame_rate": 12.3}, param="phase0.encoder")


def test_unknown_encoder_name_is_a_params_error():
    with pytest.raises(ParamsError, match="phase0.encoder.name"):
        build_encoder({"name": "wav2vec"}, param="phase0.encoder")


@pytest.mark.parametrize("make", [MelEncoder, tiny_mimi], ids=["mel", "mimi-tiny"])
def test_padded_batch_equals_batch_one(make):
    enc = make()
    ws = waves([enc.hop * 7 + 3, enc.hop * 30, enc.hop * 12 + enc.hop // 2])
    batched = enc.encode_batch(ws)
    for w, b in zip(ws, batched):
        single = enc.encode_batch([w])[0]
        assert b.shape == single.shape == (enc.num_frames(w.size), enc.dim)
        np.testing.assert_allclose(b, single, atol=1e-5)


def test_frame_mask_marks_real_frames():
    enc = MelEncoder()
    mask = enc.frame_mask(torch.tensor([1280 * 3, 1280 * 3 + 1, 5]))
    assert mask.tolist() == [[True] * 3 + [False], [True] * 4, [True] + [False] * 3]


# ----------------------------------------------------------------------------- mimi
def test_tiny_mimi_reads_rates_and_dim_from_the_model():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        enc = build_encoder({"name": "mimi", "mimi_size": "tiny", "weights": RANDOM_INIT, "init_seed": 0}, param="phase0.encoder")
    assert (enc.sample_rate, enc.hop, enc.frame_rate, enc.dim) == (24000, 1920, 12.5, 32)
    assert enc.dim == enc.model.dimension and enc.hop == enc.model.frame_size
    assert enc.provenance["weights"] == RANDOM_INIT and enc.provenance["sha256"] == RANDOM_INIT
    assert enc.is_random
    out = enc.encode(torch.zeros(2, 24000 * 3 + 7))
    assert out.shape == (2, math.ceil((24000 * 3 + 7) / 1920), 32)


def test_random_mimi_is_seeded_and_its_codes_are_all_zero():
    a, b, c = tiny_mimi(0), tiny_mimi(0), tiny_mimi(1)
    x = torch.from_numpy(waves([24000])[0])[None]
    assert torch.equal(a.encode(x), b.encode(x))
    assert not torch.equal(a.encode(x), c.encode(x))
    codes = a.model.encode(x[:, None, :])  # (B, K, F)
    assert codes.unique().tolist() == [0]  # zero codebooks: a random Mimi emits only code 0


def test_full_mimi_config_is_512_dims_at_12_5_hz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = load_mimi(RANDOM_INIT, "full")
    assert (enc.sample_rate, enc.hop, enc.frame_rate, enc.dim) == (24000, 1920, 12.5, 512)
    assert enc.encode(torch.zeros(1, 24000)).shape == (1, 13, 512)


def test_missing_hub_weights_name_the_param(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"phase0\.encoder\.weights.*random-init"):
        build_encoder({"name": "mimi", "weights": "kyutai/moshiko-pytorch-bf16"}, param="phase0.encoder")


def test_missing_local_weights_name_the_param(tmp_path):
    with pytest.raises(WeightsError, match=r"phase0\.encoder\.weights = .*no Mimi weights offline"):
        build_encoder({"name": "mimi", "weights": str(tmp_path / "nope.safetensors")}, param="phase0.encoder")
    pickle = tmp_path / "mimi.pt"
    pickle.write_bytes(b"\x80\x04junk")
    with pytest.raises(WeightsError, match="not a .safetensors file"):
        resolve_weights(str(pickle))


def test_local_checkpoint_loads_with_sha256_provenance(tmp_path):
    from safetensors.torch import save_file

    src = tiny_mimi(3)
    path = tmp_path / "mimi-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()}, str(path))
    enc = load_mimi(str(path), "tiny")
    assert enc.provenance["sha256"] == sha256_file(path) and enc.provenance["weights"] == str(path)
    # the weights as given and their hash; no resolved path (a hub id resolves into this
    # host's HF cache, which must not end up in a DVC output)
    assert set(enc.provenance) == {"name", "weights", "sha256"}
    assert not enc.is_random
    x = torch.from_numpy(waves([30000])[0])[None]
    assert torch.equal(enc.encode(x), src.encode(x))
    with pytest.raises(WeightsError, match="does not fit the 'full' Mimi config"):
        load_mimi(str(path), "full")


def test_latents_stage_stops_with_one_line_naming_the_param(tmp_path):
    repo = Path(__file__).resolve().parents[3]
    params = tmp_path / "params.yaml"
    params.write_text("phase0:\n  latents: {device: cpu}\n  encoder: {name: mimi, weights: data/local/missing.safetensors}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "stages.phase0_latents", "--params", str(params), "--raw", str(tmp_path / "raw"),
         "--out", str(tmp_path / "out"), "--stats", str(tmp_path / "m.json")],
        cwd=repo, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "phase0.encoder.weights" in lines[0]
    assert not (tmp_path / "out").exists()


def test_bench_prints_rtfs_and_speedup_as_a_json_last_line(tmp_path, capsys):
    bench_main(["--n", "2", "--repeats", "1", "--batch-size", "2", "--max-seconds", "4",
                "--raw", str(tmp_path / "none")])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["source"] == "synthetic" and last["n_utterances"] == 2
    for name in ("mel", "mimi-tiny-random"):
        r = last["encoders"][name]
        assert r["rtf_batch1"] > 0 and r["rtf_batched"] > 0 and r["batched_speedup"] > 0
        assert r["max_abs_diff"] < 1e-4
    assert last["encoders"]["mimi-tiny-random"]["weights"] == RANDOM_INIT
