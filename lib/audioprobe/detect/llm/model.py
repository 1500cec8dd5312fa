"""Loading Qwen2-Audio (the real 7B or the embedded stand-in) and its LoRA adapter, one code path for both.

The base folder `data/detect/llm/base/` (stage detect_llm_base) always holds `base.json`
naming what the base is. For the embedded stand-in it also holds the saved weights and
processor; for real weights it names the hub id or local folder, which is resolved from
the local Hugging Face cache only (HF_HUB_OFFLINE) — a missing model is one WeightsError
line naming the param, never a download or a silent fallback.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from audioprobe.detect.llm.params import LlmModel
from audioprobe.runtime.errors import AudioprobeError, WeightsError
from audioprobe.runtime.provenance import RANDOM_INIT, sha256_file

BASE_JSON = "base.json"
EMBEDDED_ID = "embedded-tiny-qwen2-audio"


@dataclass
class Loaded:
    """A base model ready for scoring or training, and where it came from."""

    model: Any  # Qwen2AudioForConditionalGeneration, or a PeftModel around it
    processor: Any  # Qwen2AudioProcessor
    weights: dict[str, Any]  # {source, sha256}: source 'random-init' or '<id>'
    device: torch.device
    dtype: torch.dtype


def resolve(model_id: str) -> Path:
    """Return the local folder of a pretrained model given as a folder or a hub id in the local HF cache."""
    path = Path(model_id)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsError(f"detect.llm.model.id: {model_id} has no config.json; point it at a saved model folder")
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, HFValidationError (not a repo id), ...
        raise WeightsError(
            f"detect.llm.model.id: '{model_id}' is neither a local folder nor in the local Hugging Face cache; "
            f"download it first (huggingface-cli download {model_id}) or set detect.llm.model.source: embedded"
        ) from None


def weights_sha256(folder: Path) -> str:
    """sha256 over the names and hashes of a model folder's weight files (*.safetensors), sorted."""
    import hashlib

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"detect.llm.model.id: {folder} holds no *.safetensors weights")
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def read_base(base_dir: Path) -> dict[str, Any]:
    """Return the base.json record of a base folder (WeightsError naming the stage when absent)."""
    path = Path(base_dir) / BASE_JSON
    if not path.is_file():
        raise WeightsError(f"{path}: missing; run the detect_llm_base stage first")
    return json.loads(path.read_text())


def pick_device(cfg: LlmModel) -> tuple[torch.device, torch.dtype]:
    """(device, dtype): auto = CUDA with bf16 when a GPU is there, else CPU with float32."""
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise AudioprobeError("detect.llm.model.device: cuda requested but no CUDA device is visible; set auto or cpu")
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda) else "cpu")
    if cfg.dtype == "auto":
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    else:
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.dtype]
    return device, dtype


def load_base(base_dir: Path, cfg: LlmModel) -> Loaded:
    """Load the base model + processor through `from_pretrained` (embedded and pretrained alike), in eval mode."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a download at run time
    record = read_base(base_dir)
    folder = Path(base_dir) if record["source"] == RANDOM_INIT else resolve(record["id"])
    device, dtype = pick_device(cfg)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if cfg.load_in_4bit:
        if device.type != "cuda":
            raise AudioprobeError("detect.llm.model.load_in_4bit: 4-bit loading needs CUDA; set it false on CPU")
        try:
            import bitsandbytes  # noqa: F401  (imported only when 4-bit is asked for)
            from transformers import BitsAndBytesConfig
        except ImportError:
            raise AudioprobeError("detect.llm.model.load_in_4bit: bitsandbytes is not installed; "
                                  "pip install bitsandbytes or set it false") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": device.index or 0}
    try:
        model = Qwen2AudioForConditionalGeneration.from_pretrained(folder, **kwargs)
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    except OSError as exc:
        raise WeightsError(f"detect.llm.model.id: cannot load {record['id']} ({str(exc).splitlines()[0]})") from None
    if not cfg.load_in_4bit:
        model = model.to(device)
    model.eval()
    weights = {"source": record["source"] if record["source"] == RANDOM_INIT else record["id"],
               "sha256": record["sha256"]}
    return Loaded(model, processor, weights, device, dtype)


def attach_adapter(loaded: Loaded, adapter_dir: Path) -> Loaded:
    """Put a saved LoRA adapter on the base (PeftModel.from_pretrained), frozen, for scoring."""
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise WeightsError(f"{adapter_dir}/adapter_config.json: missing; run the detect_finetune stage first")
    model = PeftModel.from_pretrained(loaded.model, str(adapter_dir), is_trainable=False).eval()
    sha = weights_sha256_adapter(Path(adapter_dir))
    weights = {"source": "trained-here", "sha256": sha, "base": loaded.weights}
    return Loaded(model, loaded.processor, weights, loaded.device, loaded.dtype)


def weights_sha256_adapter(adapter_dir: Path) -> str:
    """sha256 of the adapter weights file."""
    return sha256_file(Path(adapter_dir) / "adapter_model.safetensors")
