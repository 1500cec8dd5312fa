"""End-to-end: the audio-LLM stages under the real `dvc repro` on a tiny embedded override.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

TINY_DATA = {
    "data": {
        "speech_commands": {"embedded": {"speakers": 8, "words": 4, "noise_seconds": 5.0}},
        "librispeech": {"embedded": {"speakers": 6, "utterances": 2, "min_seconds": 2.0, "max_seconds": 4.0}},
        "esc50": {"embedded": {"classes": 28, "clips_per_fold": 1}},
        "musan": {"embedded": {"music": 5, "noise": 5, "speech": 1, "seconds": 3.0}},
    },
}
TINY_DETECT = {
    "detect": {
        "dataset": {"durations_ms": [200, 500], "snrs_db": [0.0, 10.0], "clips_per_cell": 10, "oversample": 2.0,
                    "min_files_per_cell": 1, "colour_files": 2},
        "llm": {"pretrain": {"steps": 20}, "finetune": {"epochs": 1, "eval_every": 3, "warmup_steps": 2, "batch_size": 8, "grad_accum": 1},
                "opro": {"iterations": 1, "candidates": 2}, "scoring": {"batch_size": 16}},
    },
}
SYSTEMS = ["llm_base_baseline", "llm_base_opro", "llm_lora_baseline", "llm_lora_opro"]


def ran(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
@pytest.mark.e2e
def test_audio_llm_stages_on_a_tiny_override(temp_repo):
    root = temp_repo.root
    temp_repo.set_params({**TINY_DATA, **TINY_DETECT})
    temp_repo.commit()
    temp_repo.run("dvc", "repro", "detect_llm_scores@base", "detect_llm_scores@lora")

    clips = pl.read_parquet(root / "data/detect/hygiene/clips.parquet")
    for name in SYSTEMS:
        scores = pl.read_parquet(root / f"data/detect/scores/{name}/scores.parquet")
        assert scores.columns == ["clip_id", "score"] and scores.height == clips.height
        assert set(scores["clip_id"]) == set(clips["clip_id"])
        assert scores["score"].is_between(0.0, 1.0).all()
        system = json.loads((root / f"data/detect/scores/{name}/system.json").read_text())
        assert system["score_kind"] == "probability" and system["system"] == name
        assert set(system["provenance"]) == {"source", "sha256", "package"}  # flat, like the baselines'
        assert system["provenance"]["source"] == "random-init"
        assert system["weights"].get("base", system["weights"])["source"] == "random-init"
        assert any("random-init" in b for b in system["banners"])
    pre = json.loads((root / "data/detect/llm/base/base.json").read_text())["pretraining"]
    assert pre["steps"] == 20 and pre["questions"] == ["Is someone talking? Answer yes or no."]
    assert pre["train_segments"] == pl.read_parquet(root / "data/detect/clips/clips.parquet").filter(
        pl.col("split") == "train").height
    adapter = root / "data/detect/llm/adapter"
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    ft = json.loads((root / "plots/detect/finetune/finetune.json").read_text())
    assert ft["recipe"]["embedded_recipe"] and ft["recipe"]["modules_to_save"]
    assert (root / "plots/detect/finetune/live/plots/metrics/dev_loss.tsv").is_file()
    for m in ("base", "lora"):
        opro = json.loads((root / f"plots/detect/opro/{m}/opro_{m}.json").read_text())
        assert opro["prompts_scored"] >= 5 and opro["best"]["reward"] >= opro["baseline"]["reward"]
        found = json.loads((root / f"data/detect/scores/llm_{m}_opro/system.json").read_text())
        assert found["prompt"]["user"] == opro["best_prompt"]
        hist = pl.read_csv(root / f"plots/detect/opro/{m}/opro_{m}_history.csv")
        assert hist["iteration"].min() == 0 and (hist["origin"] == "seed").sum() == 5
    # timings only in the gitignored host folder, nothing host-dependent in the outputs
    assert (root / "plots/detect/host/latency_llm_lora_opro.csv").is_file()
    for f in [*(root / "plots/detect/opro").rglob("*.*"), root / "plots/detect/finetune/finetune.json", root / "data/detect/llm/adapter/adapter_config.json"]:
        assert str(root) not in f.read_text() and "_ms" not in f.read_text()

    # a LoRA rank change reruns the LoRA branch only
    temp_repo.set_params({"detect": {"llm": {"lora": {"rank": 8}}}})
    out = temp_repo.run("dvc", "repro", "detect_llm_scores@base", "detect_llm_scores@lora").stdout
    assert ran(out) == {"detect_finetune", "detect_opro@lora", "detect_llm_scores@lora"}
    assert json.loads((root / "data/detect/llm/adapter/adapter_config.json").read_text())["r"] == 8

    # detect_eval consumes the four systems like any baseline
    temp_repo.set_params({"detect": {"eval": {"systems": ["energy", *SYSTEMS], "bootstrap": 10}}})
    temp_repo.run("dvc", "repro", "detect_eval")
    table = pl.read_csv(root / "plots/detect/eval/metrics.csv")
    assert set(SYSTEMS) <= set(table["system"])
