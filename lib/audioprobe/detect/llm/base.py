"""The detect_llm_base output: the embedded stand-in saved, or a record of the pretrained weights to load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audioprobe.detect.llm.model import BASE_JSON, EMBEDDED_ID, resolve, weights_sha256
from audioprobe.detect.llm.params import LlmModel
from audioprobe.detect.llm.tiny import save_tiny
from audioprobe.runtime.provenance import RANDOM_INIT


def write_base(cfg: LlmModel, out: Path) -> dict[str, Any]:
    """Fill `out` with the base: the stand-in's files, or a record of the resolved pretrained weights."""
    if cfg.source == "embedded":
        save_tiny(cfg, out)
        record = {"source": RANDOM_INIT, "id": EMBEDDED_ID, "sha256": weights_sha256(out)}
    else:
        folder = resolve(cfg.id)
        record = {"source": "pretrained", "id": cfg.id, "sha256": weights_sha256(folder)}
    (out / BASE_JSON).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
