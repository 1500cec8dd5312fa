"""EnCodec (Meta, 24 kHz) continuous latents before the residual vector quantiser.

Through transformers' `EncodecModel`: the latents are `model.encoder(wave[B, 1, S])`,
the SEANet encoder output that `EncodecModel.encode` hands to its quantiser
(`_encode_frame`: encoder -> quantizer.encode). The real `facebook/encodec_24khz` emits
128 dims at 75 Hz (hop 320 = 8·5·4·2 samples at 24 kHz).

Weights are resolved offline only: a local folder holding `config.json` +
`model.safetensors` (a `save_pretrained` output), or a hub id read from the local
Hugging Face cache (never downloaded). "random-init" builds a labelled random model:
the config (tiny or full) is saved to a temporary folder and reloaded through the same
`from_pretrained` path real weights take.
"""

from __future__ import annotations

import contextlib
import math
import re
import tempfile
import warnings
from pathlib import Path

import torch

from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import WeightsError
from audioprobe.runtime.provenance import RANDOM_INIT, sha256_file

HUB_ID = "facebook/encodec_24khz"
WEIGHTS_FILE = "model.safetensors"
_HUB_ID = re.compile(r"^(hf://)?[\w.-]+/[\w.-]+$")


def tiny_config() -> dict:
    """Return a small EnCodec config with the real strides: 32 dims at 75 Hz, for tests and the embedded run.

    2 base filters, no residual blocks, one LSTM layer: a few thousand parameters that
    encode the embedded corpus (11 min of audio) in ~6 CPU-seconds. Same sample rate,
    strides and causal padding as the real model, so the frame bookkeeping is the
    real one. It only ever carries random weights.
    """
    return {"hidden_size": 32, "num_filters": 2, "num_residual_layers": 0, "num_lstm_layers": 1,
            "codebook_size": 16, "codebook_dim": 32}


def _check_config(config, where: str) -> None:
    """Raise WeightsError unless `config` is a 24 kHz-style model: mono, causal, no chunking/normalisation."""
    problems = []
    if config.audio_channels != 1:
        problems.append(f"audio_channels={config.audio_channels} (mono only)")
    if config.chunk_length_s is not None or config.normalize:
        problems.append("chunked / normalised input (the 48 kHz model)")
    if not config.use_causal_conv:
        problems.append("non-causal convolutions")
    if problems:
        raise WeightsError(f"{where}: unsupported EnCodec config: {', '.join(problems)}; use the "
                           f"24 kHz model ({HUB_ID})")


class EncodecEncoder(Encoder):
    """Return EnCodec's pre-quantisation latents ([B, F, 128] at 75 Hz for the real model).

    Every wave is right-padded with zeros to a whole number of hops before the
    encoder: each strided convolution then needs no extra padding of its own (which
    EnCodec would fill by reflection), and because the 24 kHz model is causal (causal
    convolutions, a unidirectional LSTM) an item's frames are the same alone or inside
    a zero-padded batch. F = ceil(S / hop); the last frame sees zeros past the end.
    EnCodec's causal convolutions pad on the left by reflection, which for a sequence
    no longer than the pad reads values past its end: a wave shorter than
    `min_frames` (= last_kernel_size, 7) frames is therefore zero-padded to that many
    frames and its own F frames are kept, exactly as inside a longer batch.
    """

    name = "encodec"

    def __init__(self, model: torch.nn.Module, provenance: dict[str, str]):
        super().__init__()
        _check_config(model.config, provenance.get("weights", "encodec"))
        self.model = model.eval().requires_grad_(False)  # a frozen feature extractor
        self.sample_rate = int(model.config.sampling_rate)
        self.hop = int(math.prod(model.config.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop
        self.dim = int(model.config.hidden_size)
        self.min_frames = int(model.config.last_kernel_size)
        self.provenance = provenance

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Return [B, ceil(S / hop), dim] latents of waves [B, S] at 24 kHz."""
        frames = self.num_frames(wave.shape[-1])
        padded = max(frames, self.min_frames) * self.hop
        x = torch.nn.functional.pad(wave.to(self.device, torch.float32), (0, padded - wave.shape[-1]))
        emb = self.model.encoder(x[:, None, :])  # (B, D, max(F, min_frames))
        return emb[:, :, :frames].transpose(1, 2)  # (B, F, D)


@contextlib.contextmanager
def _quiet():
    """Silence transformers' logging and progress bars ("Loading weights", "Writing model shards")."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def _from_pretrained(folder: str | Path, device: str | torch.device):
    from transformers import EncodecModel

    with _quiet():
        return EncodecModel.from_pretrained(str(folder), local_files_only=True).to(device)


def resolve_weights(weights: str, param: str = "phase0.encoder.weights") -> Path:
    """Return the local folder (config.json + model.safetensors) of `weights`: a path or a cached hub id.

    Raises WeightsError naming `param` when nothing usable is available offline.
    """
    path = Path(weights).expanduser()
    if path.is_dir():
        folder = path
    elif _HUB_ID.match(weights) and not path.exists():
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(weights.removeprefix("hf://"), local_files_only=True))
        except Exception:  # LocalEntryNotFoundError, or a bad repo id
            folder = None
    else:
        folder = None
    if folder is None:
        raise WeightsError(
            f"params.yaml: {param} = {weights!r}: no EnCodec weights offline (not a local folder, not "
            f"in the local Hugging Face cache); save {HUB_ID} (save_pretrained: config.json + "
            f"{WEIGHTS_FILE}) under data/local/weights/ and set {param} to that folder, or set "
            f"{param}: random-init for a labelled random model"
        )
    missing = [f for f in ("config.json", WEIGHTS_FILE) if not (folder / f).is_file()]
    if missing:
        raise WeightsError(
            f"params.yaml: {param} = {weights!r}: {folder} lacks {' and '.join(missing)} (pickled "
            f"checkpoints are not loaded; re-save with save_pretrained(safe_serialization=True))"
        )
    return folder


def load_encodec(
    weights: str,
    size: str = "full",
    device: str | torch.device = "cpu",
    init_seed: int = 0,
    param: str = "phase0.encoder.weights",
) -> EncodecEncoder:
    """Return an EncodecEncoder with weights from a folder / cached hub id, or a seeded random init.

    `size` ("full" | "tiny") chooses the config of a random init only; a checkpoint
    brings its own config.json.
    """
    from transformers import EncodecConfig, EncodecModel

    size_param = param.rsplit(".", 1)[0] + ".encodec_size"
    if size not in ("full", "tiny"):
        raise WeightsError(f"params.yaml: {size_param} must be 'full' or 'tiny', got {size!r}")
    if weights == RANDOM_INIT:
        warnings.warn(
            f"encodec ({size}) runs with RANDOM weights ({param}: random-init): its latents say "
            "nothing about the real codec",
            stacklevel=2,
        )
        config = EncodecConfig(**(tiny_config() if size == "tiny" else {}))
        # Initialise on the CPU generator: the same seed gives the same weights on any device.
        with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(init_seed)
            model = EncodecModel(config)
            # Under torchrun transformers saves on rank 0 only; every rank needs its own copy.
            model.should_save_on_this_rank = lambda is_main_process: True
            with _quiet():
                model.save_pretrained(tmp)
            model = _from_pretrained(tmp, device)  # the path real weights take
        prov = {"name": f"encodec-{size}", "weights": RANDOM_INIT, "sha256": RANDOM_INIT,
                "init_seed": str(init_seed)}
        return EncodecEncoder(model, prov)
    folder = resolve_weights(weights, param)
    try:
        model = _from_pretrained(folder, device)
    except Exception as exc:  # a config / state-dict mismatch
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"params.yaml: {param} = {weights!r}: {folder} is not an EnCodec checkpoint "
                           f"({first.rstrip(':')})") from None
    # No local path in the record: it lands in committed outputs (host-independent).
    prov = {"name": "encodec", "weights": weights, "sha256": sha256_file(folder / WEIGHTS_FILE)}
    try:
        return EncodecEncoder(model, prov)
    except WeightsError as exc:
        raise WeightsError(f"params.yaml: {param} = {weights!r}: {exc}") from None
