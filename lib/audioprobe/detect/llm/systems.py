"""The four audio-LLM systems of the comparison matrix, and what every audio-LLM stage does first.

System names (folders under data/detect/scores/): llm_<model>_<prompt> for model in
{base, lora} (base = Qwen2-Audio as loaded; lora = base + the detect_finetune adapter)
and prompt in {baseline, opro} (baseline = the hand-written prompt in params; opro =
the best prompt detect_opro found for that model on dev).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from audioprobe.audio.io import read_audio
from audioprobe.detect.llm.batch import AudioFeatures, extract
from audioprobe.detect.llm.clips import SR, read_table
from audioprobe.detect.llm.model import Loaded, attach_adapter, load_base
from audioprobe.detect.llm.params import LlmModel
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.headline import banners

MODELS = ("base", "lora")
PROMPTS = ("baseline", "opro")


def system_name(model: str, prompt: str) -> str:
    return f"llm_{model}_{prompt}"


@dataclass
class ClipSet:
    table: pl.DataFrame
    audio: AudioFeatures
    load_ms: np.ndarray  # [N] reading each clip file (host timing)
    features_s: float  # the front-end over all clips (host timing)


def subset(table: pl.DataFrame, split: str, cap: int, seed: int) -> pl.DataFrame:
    """Rows of `split`; with cap > 0, a seeded random `cap` of them (file order kept)."""
    t = table.filter(pl.col("split") == split)
    if cap and t.height > cap:
        keep = np.sort(np.random.default_rng([seed, 11]).choice(t.height, cap, replace=False))
        t = t[keep.tolist()]
    return t


def load_clips(table: pl.DataFrame, clips_root: Path, processor) -> ClipSet:
    """Read every clip of `table` and run the processor's front-end once over them."""
    waves, load_ms, bad = [], [], []
    for rel in table["audio"]:
        t0 = time.perf_counter()
        try:
            waves.append(read_audio(Path(clips_root) / rel, expected_sr=SR)[0])
        except DataError as exc:
            bad.append(str(exc))
        load_ms.append(1000 * (time.perf_counter() - t0))
    if bad:
        raise DataError(f"{len(bad)} unreadable clip(s): " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    t0 = time.perf_counter()
    audio = extract(processor, waves, SR)
    return ClipSet(table, audio, np.array(load_ms), time.perf_counter() - t0)


def banner_lines(clips_root: Path, weights: dict) -> list[str]:
    """The warnings every output of these clips and weights carries (synthetic data, random-init weights)."""
    prov = Path(clips_root) / "provenance.json"
    data = json.loads(prov.read_text()) if prov.is_file() else {}
    return banners(data, {"audio_llm": weights.get("base", weights)})


def provenance(weights: dict) -> dict:
    """Flat {source, sha256, package} for detect_eval's provenance table (the baselines' shape).

    source: 'random-init' when the base is random (also for an adapter trained on it: its
    numbers say nothing about a pretrained model), else the base id or 'trained-here' for
    an adapter on pretrained weights; sha256 of the weights actually added last.
    """
    from importlib import metadata

    base = weights.get("base", weights)
    libs = f"transformers {metadata.version('transformers')}, peft {metadata.version('peft')}"
    if "base" not in weights:
        return {"source": base["source"], "sha256": base["sha256"], "package": f"{libs}; Qwen2-Audio base"}
    source = "random-init" if base["source"] == "random-init" else "trained-here"
    return {"source": source, "sha256": weights["sha256"],
            "package": f"{libs}; LoRA adapter trained here on {base['source']}@{base['sha256'][:12]}"}


def load_model(model: str, base_dir: Path, adapter_dir: Path | None, cfg: LlmModel) -> Loaded:
    """The base, with the adapter attached when model == 'lora'."""
    loaded = load_base(base_dir, cfg)
    if model == "lora":
        if adapter_dir is None:
            raise ValueError("model 'lora' needs the adapter folder")
        loaded = attach_adapter(loaded, adapter_dir)
    return loaded


__all__ = ["MODELS", "PROMPTS", "ClipSet", "banner_lines", "load_clips", "provenance",
           "load_model", "read_table", "subset", "system_name"]
