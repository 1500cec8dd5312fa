"""detect_finetune: LoRA on the A/B answer token (train split), best-by-dev-loss adapter and its curves.

Runs as one process or as N torchrun workers (`python -m audioprobe.parallel.launch --nproc N -m
stages.detect_finetune`, params detect.llm.finetune.nproc): every rank trains its rows of
each batch, only rank 0 writes the outputs.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch
import typer

from audioprobe.parallel import dist

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_json
from audioprobe.runtime.errors import ParamsError
from audioprobe.detect.llm.clips import read_table
from audioprobe.detect.llm.finetune import lora_model, probe_head, save_adapter, train
from audioprobe.detect.llm.model import EMBEDDED_ID, load_base, read_base
from audioprobe.detect.llm.prompt import Prompt, encode_prompt
from audioprobe.detect.llm.systems import banner_lines, load_clips, subset
from audioprobe.runtime.headline import add_banner_column
from audioprobe.runtime.live import TrainingLog
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    base: Path = typer.Option(Path("data/detect/llm/base")),
    clips: Path = typer.Option(Path("data/detect/clips")),
    kept: Path = typer.Option(Path("data/detect/hygiene/clips.parquet")),
    out: Path = typer.Option(Path("data/detect/llm/adapter")),
    live: Path = typer.Option(Path("plots/detect/finetune/live")),
    summary: Path = typer.Option(Path("plots/detect/finetune/finetune.json")),
    seed: int = typer.Option(42, help="the global `seed`: clip subsets, LoRA init and dropout, batch order"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.llm", params_file)
    torch.set_num_threads(cfg.finetune.threads)
    with dist.session(cfg.model.device, "detect.llm.model.device") as d:
        _finetune(d, cfg, base, clips, kept, out, live, summary, seed)


@contextlib.contextmanager
def _outputs(d: dist.Dist, out: Path, live: Path, banner: str):
    """Yield (adapter temp folder, TrainingLog) on rank 0, Nones on the others; renamed into place on success.

    The curves get the banner column their chart draws (dvc.yaml detect_finetune_*), from provenance.
    """
    if not d.is_main:
        yield None, None
        return
    with atomic_dir(out) as tmp, atomic_dir(live) as tmp_live:
        with TrainingLog(tmp_live) as curves:
            yield tmp, curves
        add_banner_column(tmp_live, banner)


def _finetune(d: dist.Dist, cfg, base: Path, clips: Path, kept: Path, out: Path, live: Path, summary: Path,
              seed: int) -> None:
    ft = cfg.finetune
    if ft.batch_size % d.world:
        raise ParamsError(f"params.yaml: detect.llm.finetune.batch_size: a batch of {ft.batch_size} clips does not"
                          f" split over {d.world} processes; set detect.llm.finetune.nproc to a divisor")
    if d.distributed and cfg.model.load_in_4bit:
        raise ParamsError("params.yaml: detect.llm.model.load_in_4bit: 4-bit loading runs in one process only;"
                          " set detect.llm.finetune.nproc: 1")
    t_start = time.perf_counter()
    loaded = load_base(base, cfg.model)
    embedded = read_base(base)["id"] == EMBEDDED_ID
    table = read_table(kept, ("train", "dev"))
    train_t = subset(table, "train", ft.max_train_clips, seed)
    dev_t = subset(table, "dev", ft.max_dev_clips, seed)
    train_c = load_clips(train_t, clips, loaded.processor)
    dev_c = load_clips(dev_t, clips, loaded.processor)
    pids = encode_prompt(loaded.processor, Prompt(cfg.prompt.system, cfg.prompt.user))
    model = lora_model(loaded.model, cfg.lora, embedded, seed=seed)
    lr = ft.embedded_lr if embedded else ft.lr
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    t_train = time.perf_counter()
    probe = probe_head(model, loaded.processor, pids, train_c.audio, train_t["label"].to_list(),
                       ft.embedded_probe_steps if embedded else 0, ft.batch_size * ft.grad_accum, lr,
                       loaded.device, loaded.dtype, seed) if embedded else []
    banners = banner_lines(clips, loaded.weights)
    with _outputs(d, out, live, "; ".join(banners)) as (tmp, curves):
        hist = train(model, loaded.processor, pids, train_c.audio, train_t["label"].to_list(), dev_c.audio,
                     dev_t["label"].to_list(), ft, lr, loaded.device, loaded.dtype,
                     log=curves.log if curves is not None else None, d=d, seed=seed)
        t_done = time.perf_counter()
        if d.is_main:
            save_adapter(model, tmp, read_base(base)["id"])
    best = next(r for r in hist.rows if r["step"] == hist.best_step)
    if not d.is_main:
        return
    write_json(summary, {
        "base": loaded.weights, "banners": banners, "train_clips": train_t.height, "dev_clips": dev_t.height,
        "recipe": {"lr": lr, "lora_rank": cfg.lora.rank, "lora_alpha": cfg.lora.alpha, "targets": cfg.lora.targets,
                   "modules_to_save": cfg.lora.embedded_modules_to_save if embedded else [],
                   "trainable_parameters": trainable, "embedded_recipe": embedded,
                   "head_probe": {"steps": len(probe), "loss_first": round(probe[0], 4) if probe else None,
                                  "loss_last": round(probe[-1], 4) if probe else None}},
        "best_step": hist.best_step, "best_dev_loss": best["dev_loss"],
        "best_dev_balanced_accuracy": best["dev_balanced_accuracy"], "history": hist.rows,
    })
    n_steps = hist.rows[-1]["step"]
    procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
    typer.echo(f"detect_finetune: {train_t.height} train / {dev_t.height} dev clips, {n_steps} optimiser steps, "
               f"{trainable} trainable parameters{procs}; best step {hist.best_step}: dev loss {best['dev_loss']:.4f}, "
               f"dev balanced accuracy {best['dev_balanced_accuracy']:.3f}")
    typer.echo(f"detect_finetune: host timings (shared CPU): setup {t_train - t_start:.1f} s, "
               f"training {t_done - t_train:.1f} s ({(t_done - t_train) / max(n_steps, 1):.3f} s per step incl. evals)")


if __name__ == "__main__":
    run(app)
