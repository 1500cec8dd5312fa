"""The detect_llm_base output: the embedded stand-in (pretrained here) saved, or a record of the pretrained weights.

Embedded: a seeded random tiny Qwen2-Audio, then — when a `Pretraining` is given — trained in
full on the detect train split's clean segments (audioprobe.detect.llm.pretrain) so the base hears
before LoRA and OPRO see it. Pretrained weights are used as published: nothing is trained and
base.json says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audioprobe.detect.llm.model import BASE_JSON, EMBEDDED_ID, resolve, weights_sha256
from audioprobe.detect.llm.params import DEFAULT_SYSTEM, LlmModel, LlmPretrain
from audioprobe.detect.llm.tiny import build_model, build_processor
from audioprobe.runtime.provenance import RANDOM_INIT

NOT_PRETRAINED = "none: pretrained weights are used as published"


@dataclass
class Pretraining:
    """What the embedded base is trained on before it is saved: the clip folder and the settings."""

    clips: Path  # detect_dataset's folder (clips.parquet + clean/)
    cfg: LlmPretrain
    progress: bool = False


def write_base(cfg: LlmModel, out: Path, pretraining: Pretraining | None = None) -> dict[str, Any]:
    """Fill `out` with the base: the stand-in's files, or a record of the resolved pretrained weights."""
    if cfg.source == "embedded":
        processor = build_processor(cfg.embedded_vocab)
        model = build_model(cfg, processor.tokenizer)
        record: dict[str, Any] = {"source": RANDOM_INIT, "id": EMBEDDED_ID}
        if pretraining is not None and pretraining.cfg.steps:
            record["pretraining"] = _pretrain(model, processor, pretraining, cfg.embedded_seed)
        else:
            record["pretraining"] = "none: the random init as drawn"
        model.save_pretrained(out)
        processor.save_pretrained(out)
        record["sha256"] = weights_sha256(out)
    else:
        folder = resolve(cfg.id)
        record = {"source": "pretrained", "id": cfg.id, "sha256": weights_sha256(folder),
                  "pretraining": NOT_PRETRAINED}
    (out / BASE_JSON).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _pretrain(model, processor, p: Pretraining, seed: int) -> dict[str, Any]:
    """Train `model` in full on the train split's material; the record base.json keeps of it."""
    import torch

    from audioprobe.detect.llm.pretrain import QUESTIONS, pretrain, train_material

    torch.set_num_threads(p.cfg.threads)
    material = train_material(p.clips, processor, p.cfg.snrs_db, p.cfg.copies, seed)
    bar = None
    if p.progress:
        from tqdm import tqdm

        bar = tqdm(total=p.cfg.steps, desc="detect_llm_base: pretraining", unit="step")
    losses = pretrain(model, processor, material, DEFAULT_SYSTEM, p.cfg.steps, p.cfg.batch_size, p.cfg.lr, seed,
                      log=(lambda s, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}"))) if bar else None)
    if bar is not None:
        bar.close()
    tail = max(1, len(losses) // 10)
    return {
        "material": "clean train-split segments of detect_dataset's clips + generated white/pink/brown noise",
        "train_segments": int(material.table.height), "audio_entries": int(len(material.audio)),
        "questions": [q for q, _ in QUESTIONS], "steps": p.cfg.steps, "batch_size": p.cfg.batch_size,
        "lr": p.cfg.lr, "seed": seed,
        "loss_first_10pct": round(float(np.mean(losses[:tail])), 4),
        "loss_last_10pct": round(float(np.mean(losses[-tail:])), 4),
    }
