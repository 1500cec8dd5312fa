"""detect_opro: OPRO prompt search on the dev split for one model (base or lora)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_csv, write_json
from audioprobe.runtime.headline import with_banner
from audioprobe.detect.llm.clips import conditions, read_table, speech_targets
from audioprobe.detect.llm.opro import SEED_PROMPTS, EditOptimizer, LlmOptimizer, history_rows, search
from audioprobe.detect.llm.prompt import Prompt, encode_prompt
from audioprobe.detect.llm.scoring import score
from audioprobe.detect.llm.systems import MODELS, banner_lines, load_clips, load_model, subset
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    model: str = typer.Option(..., help="base | lora"),
    base: Path = typer.Option(Path("data/detect/llm/base")),
    adapter: Path = typer.Option(Path("data/detect/llm/adapter")),
    clips: Path = typer.Option(Path("data/detect/clips")),
    kept: Path = typer.Option(Path("data/detect/hygiene/clips.parquet")),
    plots: Path = typer.Option(None, help="output folder (default plots/detect/opro/<model>)"),
    seed: int = typer.Option(42, help="the global `seed`: dev subset and the optimiser's random choices"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    if model not in MODELS:
        raise typer.BadParameter(f"--model must be one of {MODELS}")
    cfg = params.load_group("detect.llm", params_file)
    plots = plots or Path("plots/detect/opro") / model
    op = cfg.opro
    torch.set_num_threads(cfg.scoring.threads)
    t0 = time.perf_counter()
    loaded = load_model(model, base, adapter, cfg.model)
    dev_t = subset(read_table(kept, ("dev",)), "dev", op.max_dev_clips, seed)
    dev = load_clips(dev_t, clips, loaded.processor)
    y, cond = speech_targets(dev_t), conditions(dev_t)
    n_scored = 0

    def score_fn(user: str) -> np.ndarray:
        nonlocal n_scored
        n_scored += 1
        pids = encode_prompt(loaded.processor, Prompt(cfg.prompt.system, user))
        return score(loaded.model, loaded.processor, pids, dev.audio, loaded.device, loaded.dtype,
                     cfg.scoring.batch_size)

    if op.optimizer == "edit":
        optimizer = EditOptimizer(seed)
    else:
        optimizer = LlmOptimizer(op.optimizer_model, op.temperature, op.max_new_tokens, seed,
                                 device=loaded.device.type)
    seeds = [cfg.prompt.user, *SEED_PROMPTS[1:]]  # the params baseline replaces the origin's first prompt
    best, history, summary = search(score_fn, y, cond, optimizer, op, seeds=seeds, log=typer.echo)
    baseline = history[0]
    banners = banner_lines(clips, loaded.weights)
    # the banner column the detect_opro_reward chart draws, from provenance
    write_csv(plots / f"opro_{model}_history.csv", with_banner(history_rows(history), "; ".join(banners)))
    write_csv(plots / f"opro_{model}_iterations.csv", summary)
    write_json(plots / f"opro_{model}.json", {
        "model": model, "weights": loaded.weights, "banners": banners, "optimizer": op.optimizer,
        "optimizer_model": op.optimizer_model if op.optimizer == "llm" else None, "dev_clips": dev_t.height,
        "system": cfg.prompt.system, "best_prompt": best.prompt,
        "best": {"reward": best.reward, "ba_clip": best.ba_clip, "ba_cond": best.ba_cond, "length": best.length,
                 "iteration": best.iteration, "origin": best.origin},
        "baseline": {"reward": baseline.reward, "ba_clip": baseline.ba_clip, "ba_cond": baseline.ba_cond},
        "iterations_run": summary[-1]["iteration"], "prompts_scored": len(history),
    })
    typer.echo(f"detect_opro[{model}]: {len(history)} prompts scored on {dev_t.height} dev clips; best reward "
               f"{best.reward:.4f} (BA_clip {best.ba_clip:.3f}) vs baseline {baseline.reward:.4f} "
               f"(BA_clip {baseline.ba_clip:.3f}); host time {time.perf_counter() - t0:.1f} s (shared CPU)")


if __name__ == "__main__":
    run(app)
