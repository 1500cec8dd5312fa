"""kws_train: train one condition x replica of the keyword spotter; keep the best-validation weights.

Runs as one process or as N torchrun workers (`python -m audioprobe.launch --nproc N -m
stages.kws_train ...`, params kws.train.nproc): every rank trains its share of each global
batch, only rank 0 writes the outputs.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import typer

from audioprobe import dist, params
from audioprobe.atomic import atomic_dir, write_csv
from audioprobe.errors import DataError, ParamsError
from audioprobe.kws.augment import Augment
from audioprobe.kws.features import load_feature_cache
from audioprobe.kws.net import CONDITIONS, build_kws_net, param_groups
from audioprobe.kws.training import evaluate, make_deterministic, replica_seed, train
from audioprobe.live import TrainingLog
from audioprobe.provenance import sha256_file
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    condition: str = typer.Option(..., help="base (identity gate) or lif"),
    replica: int = typer.Option(..., help="one of params.yaml kws.train.replicas"),
    seed: int = typer.Option(..., help="global seed (params.yaml seed)"),
    features: Path = typer.Option(Path("data/kws/features"), help="kws_features output"),
    out: Path = typer.Option(None, help="run folder (default data/kws/runs/<condition>-<replica>)"),
    live: Path = typer.Option(None, help="dvclive folder (default plots/kws/live/<condition>-<replica>)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    progress: bool = typer.Option(True, help="tqdm progress bars"),
) -> None:
    if condition not in CONDITIONS:
        raise ParamsError(f"--condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    kws = params.load_group("kws", params_file)
    cfg, mcfg = kws.train, kws.model
    if replica not in cfg.replicas:
        raise ParamsError(f"--replica {replica} is not in params.yaml kws.train.replicas {cfg.replicas}")
    cache = load_feature_cache(features)
    if cache.meta["n_mels"] != mcfg.n_mels:
        raise ParamsError(
            f"params.yaml: kws.model.n_mels is {mcfg.n_mels} but {features} holds {cache.meta['n_mels']} mel bins;"
            " rerun `dvc repro kws_features`"
        )
    splits = {s: cache.tensors(s) for s in ("train", "validation", "test")}
    for name, (x, _) in splits.items():
        if x.shape[0] == 0:
            raise DataError(f"{features}: the {name} split is empty; the corpus needs clips in every official split")

    with dist.session(cfg.device, "kws.train.device") as d:
        if cfg.batch_size % d.world:
            raise ParamsError(f"params.yaml: kws.train.batch_size {cfg.batch_size} is not divisible by the"
                              f" {d.world} processes of this run; set kws.train.nproc to a divisor")
        _train_and_write(d, condition, replica, seed, cache, splits, cfg, mcfg, out, live, progress)


@contextlib.contextmanager
def _outputs(d: dist.Dist, live: Path, out: Path):
    """Yield (curves temp folder, run temp folder) on rank 0, (None, None) on the others.

    The temp folders replace `live` and `out` only when the run succeeded (audioprobe.atomic).
    """
    if not d.is_main:
        yield None, None
        return
    with atomic_dir(live) as live_tmp, atomic_dir(out) as tmp:
        yield live_tmp, tmp


def _train_and_write(d, condition, replica, seed, cache, splits, cfg, mcfg, out, live, progress) -> None:
    import torch
    from safetensors.torch import save_file

    device = d.device
    torch_seed = replica_seed(seed, replica)
    make_deterministic(torch_seed, cfg.threads, device)
    model = build_kws_net(mcfg, condition, n_classes=len(cache.words))
    run_name = f"{condition}-{replica}"
    augment = Augment.from_params(cfg.augment, cache.noise()) if cfg.augment.enabled else None
    out = out or Path("data/kws/runs") / run_name
    # Curves and run folder go to temp siblings and replace the last good ones only when
    # the whole run succeeded (a failed run never leaves partial curves in plots/).
    # Wall-clock time is printed below, not stored: both folders are DVC outputs, and
    # two bit-identical runs must hash the same.
    with _outputs(d, live or Path("plots/kws/live") / run_name, out) as (live_tmp, tmp):
        with TrainingLog(live_tmp) if d.is_main else contextlib.nullcontext() as log:
            result = train(
                model, param_groups(model, cfg.weight_decay), splits["train"], splits["validation"],
                epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, grad_clip=cfg.grad_clip,
                eval_batch_size=cfg.eval_batch_size, seed=torch_seed, device=device, progress=progress,
                desc=run_name, schedule=cfg.schedule, warmup_epochs=cfg.warmup_epochs,
                plateau=(cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_reductions), augment=augment,
                on_epoch=None if log is None else lambda r: log.log(
                    r.epoch, train_loss=r.train_loss, val_loss=r.val_loss, train_acc=r.train_acc, val_acc=r.val_acc),
                dist=d, amp=cfg.amp, loader_workers=cfg.loader_workers if device.type == "cuda" else 0,
            )
            if log is not None:
                log.summary(best_epoch=result.best_epoch, best_val_acc=result.best_val_acc)
        model.load_state_dict(result.best_state)
        test_loss, test_acc, test_pred = evaluate(model, *splits["test"], cfg.eval_batch_size, device,
                                                  dist=d, amp=cfg.amp)
        if not d.is_main:
            return
        # One metadata key: safetensors writes several keys in hash-map order, which would
        # make the checkpoint's sha256 differ between two bit-identical runs.
        run_info = {"condition": condition, "replica": replica, "seed": seed, "torch_seed": torch_seed,
                    "epoch": result.best_epoch}
        save_file(result.best_state, str(tmp / "model.safetensors"),
                  metadata={"audioprobe.kws_run": json.dumps(run_info, sort_keys=True)})
        write_csv(tmp / "test_predictions.csv", [
            {"relpath": cache.relpaths[i], "actual": cache.words[cache.labels[i]], "predicted": cache.words[pred]}
            for i, pred in zip(cache.indices("test"), test_pred)
        ])
        record = {
            "condition": condition, "replica": replica, "seed": seed, "torch_seed": torch_seed,
            "best_epoch": result.best_epoch, "best_val_acc": result.best_val_acc,
            "test_acc": test_acc, "test_loss": test_loss, "epochs": result.epochs_run, "max_epochs": cfg.epochs,
            "stop": result.stop,
            "n_classes": len(cache.words), "n_params": sum(p.numel() for p in model.parameters()),
            "n_train": int(splits["train"][0].shape[0]), "n_validation": int(splits["validation"][0].shape[0]),
            "n_test": int(splits["test"][0].shape[0]),
            "cfc_impl": mcfg.cfc_impl, "wiring": mcfg.wiring, "norm_preserve": mcfg.lif.norm_preserve,
            "device": str(device), "threads": cfg.threads, "torch_version": torch.__version__,
            "checkpoint_sha256": sha256_file(tmp / "model.safetensors"),
            "data_sha256": cache.meta["data"]["sha256"],
        }
        (tmp / "result.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
    typer.echo(
        f"kws_train {run_name}: best val acc {result.best_val_acc:.4f} (epoch {result.best_epoch} of"
        f" {result.epochs_run}, {'stopped at a plateau' if result.stop == 'plateau' else 'all epochs run'}),"
        f" test acc {test_acc:.4f} ({len(cache.words)} classes, chance {1 / len(cache.words):.4f}),"
        f" {result.seconds:.1f} s on {device}{procs} [{mcfg.cfc_impl} CfC, norm_preserve={mcfg.lif.norm_preserve}]"
    )

if __name__ == "__main__":
    run(app)
