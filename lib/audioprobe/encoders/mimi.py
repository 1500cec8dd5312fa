"""Mimi (Kyutai) continuous pre-quantisation latents, through the installed `moshi` package.

moshi 0.2.13 pins torch<2.10 and huggingface-hub<1.0, so it is installed with
--no-deps (see the Makefile); the parts used here (loaders.get_mimi, MimiModel)
work with this venv's torch and hub. Every moshi-specific workaround lives in this
file.

Weights are resolved offline only: a local .safetensors file, or a hub id looked up
in the local Hugging Face cache (never downloaded). Missing weights raise
WeightsError naming the params key; "random-init" builds a labelled random model.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import torch

from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import WeightsError
from audioprobe.runtime.provenance import RANDOM_INIT, sha256_file

SAFETENSORS_SUFFIXES = (".safetensors", ".sft", ".sfts")
_HUB_ID = re.compile(r"^(hf://)?[\w.-]+/[\w.-]+(/[\w./-]+)?$")


def tiny_config() -> dict:
    """Return a small Mimi config (SEANet 4 filters, dim 32, 1 transformer layer) for tests.

    Same strides, sample rate and frame rate as the real model (24 kHz, hop 1920,
    12.5 Hz), so the frame bookkeeping is exercised; it encodes seconds of audio in
    milliseconds on a CPU. It only ever carries random weights. A random Mimi's RVQ
    codebooks are all zero, so every code it emits is 0, and its latents barely move
    with the input: the origin's codec-reasoning arms ran on exactly such a model.
    """
    from moshi.models import loaders

    cfg = copy.deepcopy(loaders._mimi_config)
    dim = 32
    cfg["seanet"].update(dimension=dim, n_filters=4)
    cfg["quantizer"].update(dimension=16, n_q=8, bins=16, input_dimension=dim, output_dimension=dim)
    cfg["transformer"].update(
        d_model=dim, num_heads=2, num_layers=1, dim_feedforward=64,
        input_dimension=dim, output_dimensions=[dim],
    )
    return cfg


def resolve_weights(weights: str, param: str = "phase0.encoder.weights") -> Path:
    """Return the local path of `weights` (a file, or a hub id in the local HF cache).

    Raises WeightsError naming `param` when nothing usable is available offline.
    """
    path = Path(weights).expanduser()
    if path.is_file():
        if path.suffix not in SAFETENSORS_SUFFIXES:
            raise WeightsError(
                f"params.yaml: {param} = {weights!r} is not a .safetensors file; convert the "
                "checkpoint to safetensors (pickled checkpoints are not loaded)"
            )
        return path
    if _HUB_ID.match(weights):
        from huggingface_hub import hf_hub_download
        from moshi.models import loaders

        parts = weights.removeprefix("hf://").split("/")
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or loaders.MIMI_NAME
        try:
            return Path(hf_hub_download(repo, filename, local_files_only=True))
        except Exception:  # LocalEntryNotFoundError, or a bad repo id
            pass
    raise WeightsError(
        f"params.yaml: {param} = {weights!r}: no Mimi weights offline (not a local file, not in "
        "the local Hugging Face cache); put the .safetensors (e.g. kyutai/moshiko-pytorch-bf16/"
        f"tokenizer-e351c8d8-checkpoint125.safetensors) under data/local/ and set {param} to its "
        f"path, or set {param}: random-init for a labelled random model"
    )


class MimiEncoder(Encoder):
    """Return Mimi's continuous latents before the RVQ ([B, F, 512] at 12.5 Hz for the real model).

    That is SEANet encoder -> encoder transformer -> downsample to the codec frame
    rate (MimiModel.encode_to_latent(quantize=False)). The model is causal, so an
    item's frames are the same alone or in a right-padded batch. Sample rate, hop,
    frame rate and dim come from the loaded model.
    """

    name = "mimi"

    def __init__(self, model: torch.nn.Module, provenance: dict[str, str]):
        super().__init__()
        self.model = model.eval().requires_grad_(False)  # a frozen feature extractor
        self.sample_rate = int(model.sample_rate)
        self.frame_rate = float(model.frame_rate)
        self.hop = int(model.frame_size)
        self.dim = int(model.dimension)
        if self.sample_rate != self.hop * self.frame_rate:
            raise ValueError(f"mimi: sample_rate {self.sample_rate} != hop {self.hop} x frame_rate {self.frame_rate}")
        self.provenance = provenance

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Return [B, ceil(S / hop), dim] latents of waves [B, S] at the model's rate."""
        x = wave.to(self.device, torch.float32)[:, None, :]  # (B, 1, S)
        # moshi: the public encode_to_latent(quantize=False) pads to whole frames itself
        # and skips the quantizer; it must run outside streaming mode (state None).
        emb = self.model.encode_to_latent(x, quantize=False)  # (B, D, F)
        return emb.transpose(1, 2)  # (B, F, D)


def load_mimi(
    weights: str,
    size: str = "full",
    device: str | torch.device = "cpu",
    init_seed: int = 0,
    param: str = "phase0.encoder.weights",
) -> MimiEncoder:
    """Return a MimiEncoder with weights from a path / cached hub id, or a seeded random init.

    `size="tiny"` builds tiny_config() (random-init, or a checkpoint saved from one in tests).
    """
    from moshi.models import loaders

    size_param = param.rsplit(".", 1)[0] + ".mimi_size"
    if size not in ("full", "tiny"):
        raise WeightsError(f"params.yaml: {size_param} must be 'full' or 'tiny', got {size!r}")
    cfg = tiny_config() if size == "tiny" else None
    if weights == RANDOM_INIT:
        warnings.warn(
            f"mimi ({size}) runs with RANDOM weights ({param}: random-init): its latents say "
            "nothing about the real codec",
            stacklevel=2,
        )
        # Initialise on the CPU generator, then move: the same seed gives the same
        # weights whatever the device.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            model = loaders.get_mimi(None, cfg, device="cpu").to(device)
        prov = {"name": f"mimi-{size}", "weights": RANDOM_INIT, "sha256": RANDOM_INIT,
                "init_seed": str(init_seed)}
        return MimiEncoder(model, prov)
    path = resolve_weights(weights, param)
    try:
        model = loaders.get_mimi(path, cfg, device=device)
    except Exception as exc:  # wrong file: safetensors header or state-dict key mismatch
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"params.yaml: {param} = {weights!r}: {path} does not fit the {size!r} Mimi config "
            f"({first.rstrip(':')}); check {size_param} and the file"
        ) from None
    # The weights as given in params and their sha256; never the resolved local path, which
    # differs between hosts and would make a DVC output host-dependent.
    prov = {"name": f"mimi-{size}", "weights": weights, "sha256": sha256_file(path)}
    return MimiEncoder(model, prov)
