"""EnCodec encoder: pre-quantisation latents, frame counts, batching, provenance, weights errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from audioprobe.encoders import build_encoder
from audioprobe.encoders.encodec import EncodecEncoder, load_encodec, resolve_weights
from audioprobe.runtime.errors import WeightsError
from audioprobe.phase0.params import Phase0Tier1Encodec
from audioprobe.runtime.provenance import RANDOM_INIT, sha256_file


def tiny_encodec(seed: int = 0) -> EncodecEncoder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_encodec(RANDOM_INIT, "tiny", init_seed=seed)


def waves(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def test_tiny_encodec_rates_dim_and_random_provenance():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        enc = build_encoder({"name": "encodec", "weights": RANDOM_INIT, "encodec_size": "tiny", "init_seed": 0},
                            param="phase0.tier1.encodec")
    assert (enc.name, enc.sample_rate, enc.hop, enc.frame_rate, enc.dim) == ("encodec", 24000, 320, 75.0, 32)
    assert enc.provenance == {"name": "encodec-tiny", "weights": RANDOM_INIT, "sha256": RANDOM_INIT, "init_seed": "0"}
    assert enc.is_random


def test_tier1_params_default_builds_the_tiny_random_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = build_encoder({"name": "encodec", **Phase0Tier1Encodec().model_dump()}, param="phase0.tier1.encodec")
    assert enc.provenance["name"] == "encodec-tiny" and enc.is_random


def test_full_config_is_128_dims_at_75_hz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = load_encodec(RANDOM_INIT, "full")
    assert (enc.sample_rate, enc.hop, enc.frame_rate, enc.dim) == (24000, 320, 75.0, 128)
    assert enc.encode(torch.zeros(1, 24000)).shape == (1, 75, 128)


@pytest.mark.parametrize("n", [1, 319, 320, 321, 24000 + 17])
def test_frame_count_is_ceil_of_hop(n):
    enc = tiny_encodec()
    out = enc.encode(torch.zeros(2, n))
    assert out.shape == (2, math.ceil(n / 320), 32) and enc.num_frames(n) == math.ceil(n / 320)


def test_padded_batch_equals_per_item_encode():
    enc = tiny_encodec()
    # Short waves (< 7 frames) included: EnCodec's reflect padding would read past their end.
    ws = waves([320 * 7 + 3, 320 * 40, 320 * 12 + 160, 5, 640, 320 * 6])
    batched = enc.encode_batch(ws)
    for w, b in zip(ws, batched):
        single = enc.encode_batch([w])[0]
        assert b.shape == single.shape == (enc.num_frames(w.size), 32)
        np.testing.assert_allclose(b, single, atol=1e-5)


def test_seeded_random_init_goes_through_from_pretrained():
    a, b, c = tiny_encodec(0), tiny_encodec(0), tiny_encodec(1)
    x = torch.from_numpy(waves([24000])[0])[None]
    assert torch.equal(a.encode(x), b.encode(x)) and not torch.equal(a.encode(x), c.encode(x))


def test_latents_are_what_encodec_model_encode_quantises():
    """Parity with EncodecModel.encode: its encoder output (hooked) and its codes."""
    enc = tiny_encodec(2)
    model = enc.model
    with torch.no_grad():  # random codebooks are all zero: make codes informative
        for layer in model.quantizer.layers:
            layer.codebook.embed.copy_(torch.randn_like(layer.codebook.embed))
    wave = torch.from_numpy(waves([320 * 50])[0])[None]  # whole hops: encode adds no padding of its own
    seen = []
    handle = model.encoder.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:
        with torch.no_grad():
            codes = model.encode(wave[:, None, :], bandwidth=model.config.target_bandwidths[-1]).audio_codes
    finally:
        handle.remove()
    ours = enc.encode(wave)  # (1, F, D)
    assert len(seen) == 1
    torch.testing.assert_close(ours, seen[0].transpose(1, 2), rtol=0, atol=0)
    requant = model.quantizer.encode(ours.transpose(1, 2), model.config.target_bandwidths[-1]).transpose(0, 1)
    assert codes.shape[-1] == 50 and torch.equal(codes[0], requant)
    assert codes.unique().numel() > 1


def test_local_folder_loads_with_sha256_provenance(tmp_path):
    src = tiny_encodec(3)
    src.model.save_pretrained(tmp_path / "enc")
    enc = load_encodec(str(tmp_path / "enc"))
    assert enc.provenance == {"name": "encodec", "weights": str(tmp_path / "enc"),
                              "sha256": sha256_file(tmp_path / "enc" / "model.safetensors")}
    assert not enc.is_random
    x = torch.from_numpy(waves([30000])[0])[None]
    assert torch.equal(enc.encode(x), src.encode(x))


def test_missing_weights_name_the_param(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"phase0\.tier1\.encodec\.weights = 'facebook/encodec_24khz'.*random-init"):
        build_encoder({"name": "encodec", "weights": "facebook/encodec_24khz"}, param="phase0.tier1.encodec")
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    with pytest.raises(WeightsError, match="lacks model.safetensors"):
        resolve_weights(str(tmp_path / "pickled"))


def test_48khz_style_config_is_refused(tmp_path):
    from transformers import EncodecConfig, EncodecModel

    EncodecModel(EncodecConfig(num_filters=2, hidden_size=8, num_residual_layers=0, normalize=True,
                               chunk_length_s=1.0, overlap=0.01)).save_pretrained(tmp_path / "e48")
    with pytest.raises(WeightsError, match="unsupported EnCodec config.*48 kHz"):
        load_encodec(str(tmp_path / "e48"), param="phase0.tier1.encodec.weights")
