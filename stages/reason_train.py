"""reason_train: train one arm's mapper (encoder, blind or shuffled audio) on the frozen LM.

Runs as one process or as N torchrun workers (`python -m audioprobe.parallel.launch --nproc N -m
stages.reason_train ...`, params reason.train.nproc): every rank trains its rows of each
global batch, only rank 0 writes the outputs.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
import typer

from audioprobe.parallel import dist

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv, write_json
from audioprobe.runtime.errors import ParamsError
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.reasonaqa import load_split
from audioprobe.reason import lm as lmlib
from audioprobe.reason.features import read_features
from audioprobe.runtime.headline import add_banner_column, banner_text
from audioprobe.runtime.live import TrainingLog
from audioprobe.reason.report import weights_records
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.arms import BLIND_DIM, arm_clips, arm_encoder, input_stats
from audioprobe.reason.training import ArmBatches, train_mapper
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    arm: str = typer.Option(..., help="an encoder, blind, or shuffled_<encoder>"),
    raw: Path = typer.Option(Path("data/raw/reasonaqa")),
    features: Path = typer.Option(Path("data/reason/features")),
    lm_dir: Path = typer.Option(Path("data/reason/lm")),
    out: Path = typer.Option(None, help="run folder (default data/reason/runs/<arm>)"),
    live: Path = typer.Option(None, help="dvclive folder (default plots/reason/train/<arm>)"),
    seed: int = typer.Option(42),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason.train", params_file)
    lm_name = json.loads((lm_dir / "lm.json").read_text())["name"] if (lm_dir / "lm.json").is_file() else "?"
    if arm not in cfg.arms:
        raise ParamsError(f"params.yaml: reason.train has no arm {arm!r} (arms: {', '.join(cfg.arms)}); "
                          f"list its encoder in reason.train.audio_arms or shuffled_arms")
    torch.set_num_threads(cfg.threads)
    with dist.session(cfg.device, "reason.train.device") as d:
        _train_and_write(d, cfg, arm, raw, features, lm_dir, lm_name, out, live, seed, params_file)


@contextlib.contextmanager
def _outputs(d: dist.Dist, out: Path, live: Path, banner: str):
    """Yield (run temp folder, curves temp folder, TrainingLog) on rank 0, Nones on the others.

    The curves get the banner column their chart draws (dvc.yaml reason_*_loss), from provenance.
    """
    if not d.is_main:
        yield None, None, None
        return
    with atomic_dir(out) as tmp, atomic_dir(live) as tmp_live:
        with TrainingLog(tmp_live) as curves:
            yield tmp, tmp_live, curves
        add_banner_column(tmp_live, banner)


def _train_and_write(d: dist.Dist, cfg, arm, raw, features, lm_dir, lm_name, out, live, seed, params_file) -> None:
    device = d.device
    model, tok = lmlib.load_frozen_lm(lmlib.resolve_lm(lm_name, lm_dir))
    model.to(device)
    root = dataset_root(raw, params_file)
    rows = {s: load_split(root, s) for s in ("train", "val")}
    global_batch = min(cfg.batch_size, len(rows["train"]))  # a split smaller than batch_size is the batch
    if global_batch % d.world:
        raise ParamsError(f"params.yaml: reason.train.batch_size: a global batch of {global_batch} rows does not"
                          f" split over {d.world} processes; set reason.train.nproc to a divisor")
    enc = arm_encoder(arm)
    feats, meta = read_features(features / enc) if enc else (None, {"dim": BLIND_DIM, "provenance": {"name": "none"}})
    inputs = {s: arm_clips(arm, rows[s], feats, seed, s) for s in rows}
    torch.manual_seed(seed)
    mapper = AudioMapper(int(meta["dim"]), model.config.hidden_size)
    if enc:
        mapper.set_norm(*input_stats(inputs["train"]))
    mapper.to(device)
    train = ArmBatches(tok, rows["train"], [[c.to(device) for c in x] for x in inputs["train"]])
    dev = ArmBatches(tok, rows["val"], [[c.to(device) for c in x] for x in inputs["val"]])
    out = out or Path("data/reason/runs") / arm
    live = live or Path("plots/reason/train") / arm
    # this arm's banner: synthetic data, random-init only when this arm's encoder (or the LM) is random
    source = read_source(raw)
    data = {"reasonaqa": {"source": str(source["source"]), "sha256": str(source["sha256"])}}
    weights = weights_records(json.loads((lm_dir / "lm.json").read_text()), {enc: meta["provenance"]} if enc else {})
    with _outputs(d, out, live, banner_text(data, weights)) as (tmp, tmp_live, curves):
        def log(row: dict) -> None:  # one curve point per dev evaluation (rank 0)
            curves.log(int(row["step"]), **{k: v for k, v in row.items() if k != "step"})

        best, history = train_mapper(model, mapper, train, dev, tok.pad_token_id, cfg, seed,
                                     log if curves is not None else None, d, progress=f"reason_train {arm}" if d.is_main else None)
        best_row = min(history, key=lambda r: r["dev_loss"])
        if d.is_main:
            from safetensors.torch import save_file

            save_file({k: v.cpu().contiguous() for k, v in best.items()}, str(tmp / "mapper.safetensors"))
            write_csv(tmp / "history.csv", history)
            write_json(tmp / "result.json", {
                "arm": arm, "encoder": enc or "none", "enc_dim": int(meta["dim"]),
                "lm_dim": model.config.hidden_size, "best_step": best_row["step"],
                "best_dev_loss": round(best_row["dev_loss"], 6), "encoder_provenance": meta["provenance"], "lm": lm_name,
            })
    procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
    dist.main_print(d, f"reason_train: {arm} best dev loss {best_row['dev_loss']:.4f} at step {best_row['step']} "
                       f"({len(rows['train'])} train / {len(rows['val'])} dev rows{procs})")


if __name__ == "__main__":
    run(app)
