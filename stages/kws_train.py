"""kws_train: train the keyword spotter for one replica; keep each run's best-validation weights.

dvc.yaml runs one stage per replica (`kws_train@<replica>`): both conditions (base, lif)
train as separate processes, `kws.train.parallel` of them at a time (2: side by side, one
core each), and the stage replaces its outputs only when every run succeeded. Each run is
`python -m audioprobe.parallel.launch --nproc N -m stages.kws_train --condition C ...` (params
kws.train.nproc): one process, or N torchrun workers that each train their share of every
global batch, with only rank 0 writing. `--condition` runs that one run in this process;
this is also how a multi-node torchrun job trains a run (docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from audioprobe.parallel import procs

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.runtime.errors import AudioprobeError, DataError, ParamsError
from audioprobe.kws.features import load_feature_cache
from audioprobe.kws.params import CONDITIONS
from audioprobe.kws.runs import Prediction, TrainedRun, run_dir, run_name, write_run
from stages._run import run

if TYPE_CHECKING:
    from audioprobe.parallel.dist import Dist

app = typer.Typer(add_completion=False)


@app.command()
def main(
    replica: int = typer.Option(..., help="one of params.yaml kws.train.replicas"),
    seed: int = typer.Option(..., help="global seed (params.yaml seed)"),
    condition: str = typer.Option(None, help="base (identity gate) or lif: train this one run here"
                                             " (default: every condition, kws.train.parallel at a time)"),
    features: Path = typer.Option(Path("data/kws/features"), help="kws_features output"),
    runs: Path = typer.Option(Path("data/kws/runs"), help="folder of run folders <condition>-<replica>"),
    curves: Path = typer.Option(None, help="this replica's folder of dvclive folders, one per condition (default plots/kws/train/<replica>)"),
    out: Path = typer.Option(None, help="with --condition: this run's folder (default <runs>/<condition>-<replica>)"),
    live: Path = typer.Option(None, help="with --condition: its dvclive folder (default <curves>/<condition>)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    progress: bool = typer.Option(True, help="tqdm progress bars (off when runs train side by side)"),
) -> None:
    if condition is not None and condition not in CONDITIONS:
        raise ParamsError(f"--condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    if condition is None and (out is not None or live is not None):
        raise ParamsError("--out and --live name one run's folders: give --condition too, or use --runs/--curves")
    kws = params.load_group("kws", params_file)
    if replica not in kws.train.replicas:
        raise ParamsError(f"--replica {replica} is not in params.yaml kws.train.replicas {kws.train.replicas}")
    cache = _checked_cache(features, kws.model.n_mels)
    curves = curves or Path("plots/kws/train") / str(replica)
    if condition is None:
        _train_replica(replica, seed, kws.train, features, runs, curves, params_file, progress)
        return
    out = out or run_dir(runs, condition, replica)
    live = live or curves / condition
    _train_one(condition, replica, seed, cache, kws.train, kws.model, out, live, progress)


def _checked_cache(features: Path, n_mels: int):
    """The feature cache (memory-mapped), after the checks every run needs."""
    cache = load_feature_cache(features)
    if cache.meta["n_mels"] != n_mels:
        raise ParamsError(
            f"params.yaml: kws.model.n_mels is {n_mels} but {features} holds {cache.meta['n_mels']} mel bins;"
            " rerun `dvc repro kws_features`"
        )
    for name in ("train", "validation", "test"):
        if cache.indices(name).size == 0:
            raise DataError(f"{features}: the {name} split is empty; the corpus needs clips in every official split")
    return cache


def _train_replica(replica, seed, cfg, features, runs, curves, params_file, progress) -> None:
    """Train every condition of `replica` in child processes; replace the outputs only if all succeed."""
    names = [run_name(c, replica) for c in CONDITIONS]
    side_by_side = min(cfg.parallel, len(names)) > 1
    start = time.perf_counter()
    # SIGTERM (or Ctrl-C) here stops the children and removes every temp folder on the way out.
    procs.exit_on_sigterm()
    with contextlib.ExitStack() as stack:
        # The children write into these temp folders (atomically themselves); they replace
        # the committed folders only after every run exited 0.
        jobs = {}
        live_root = stack.enter_context(atomic_dir(curves))  # the replica's curves, one folder per condition
        for cond, name in zip(CONDITIONS, names):
            out = stack.enter_context(atomic_dir(run_dir(runs, cond, replica)))
            live = live_root / cond
            jobs[name] = procs.launch_argv(cfg.nproc, "stages.kws_train", [
                "--condition", cond, "--replica", replica, "--seed", seed, "--features", features,
                "--out", out, "--live", live, "--params", params_file,
                "--progress" if progress and not side_by_side else "--no-progress"])
        failure = procs.run_side_by_side(jobs, at_once=cfg.parallel)
        if failure is not None:
            name, code = failure
            raise AudioprobeError(f"kws_train replica {replica}: run {name} failed (exit code {code}, its error is"
                                  " above); the other runs were stopped and no run folder was replaced")
    typer.echo(f"kws_train replica {replica}: {', '.join(names)} trained"
               f" {'side by side' if side_by_side else 'one after the other'} in {time.perf_counter() - start:.1f} s")


@contextlib.contextmanager
def _outputs(d: Dist, live: Path, out: Path):
    """Yield (curves temp folder, run temp folder) on rank 0, (None, None) on the others.

    The temp folders replace `live` and `out` only when the run succeeded (audioprobe.runtime.atomic).
    """
    if not d.is_main:
        yield None, None
        return
    with atomic_dir(live) as live_tmp, atomic_dir(out) as tmp:
        yield live_tmp, tmp


def _train_one(condition, replica, seed, cache, cfg, mcfg, out, live, progress) -> None:
    """Train one run in this process (or as this torchrun worker's share of it)."""
    from audioprobe.parallel import dist

    procs.exit_on_sigterm()  # stopped by the replica's parent: clean up the temp folders
    splits = {s: cache.tensors(s) for s in ("train", "validation", "test")}
    with dist.session(cfg.device, "kws.train.device") as d:
        if cfg.batch_size % d.world:
            raise ParamsError(f"params.yaml: kws.train.batch_size {cfg.batch_size} is not divisible by the"
                              f" {d.world} processes of this run; set kws.train.nproc to a divisor")
        _train_and_write(d, condition, replica, seed, cache, splits, cfg, mcfg, out, live, progress)


def _train_and_write(d, condition, replica, seed, cache, splits, cfg, mcfg, out, live, progress) -> None:
    import torch

    from audioprobe.parallel.dist import fault_point
    from audioprobe.kws.augment import Augment
    from audioprobe.kws.net import build_kws_net, param_groups
    from audioprobe.kws.training import evaluate, make_deterministic, replica_seed, train
    from audioprobe.runtime.headline import add_banner_column, banner_text
    from audioprobe.runtime.live import TrainingLog

    device = d.device
    torch_seed = replica_seed(seed, replica)
    make_deterministic(torch_seed, cfg.threads, device)
    model = build_kws_net(mcfg, condition, n_classes=len(cache.words))
    name = run_name(condition, replica)
    augment = Augment.from_params(cfg.augment, cache.noise()) if cfg.augment.enabled else None
    # Curves and run folder go to temp siblings and replace the last good ones only when
    # the whole run succeeded (a failed run never leaves partial curves in plots/).
    # Wall-clock time is printed below, not stored: both folders are DVC outputs, and
    # two bit-identical runs must hash the same.
    with _outputs(d, live, out) as (live_tmp, tmp):
        with TrainingLog(live_tmp) if d.is_main else contextlib.nullcontext() as log:
            result = train(
                model, param_groups(model, cfg.weight_decay), splits["train"], splits["validation"],
                epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, grad_clip=cfg.grad_clip,
                eval_batch_size=cfg.eval_batch_size, seed=torch_seed, device=device, progress=progress,
                desc=name, schedule=cfg.schedule, warmup_epochs=cfg.warmup_epochs,
                plateau=(cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_reductions), augment=augment,
                on_epoch=None if log is None else lambda r: log.log(
                    r.epoch, train_loss=r.train_loss, val_loss=r.val_loss, train_acc=r.train_acc, val_acc=r.val_acc),
                dist=d, amp=cfg.amp, loader_workers=cfg.loader_workers if device.type == "cuda" else 0,
            )
            if log is not None:
                log.summary(best_epoch=result.best_epoch, best_val_acc=result.best_val_acc)
        if d.is_main:  # the curves' banner, from the data's provenance (dvc.yaml's kws_* charts draw it)
            add_banner_column(live_tmp, banner_text({"speech_commands": cache.meta["data"]}))
        model.load_state_dict(result.best_state)
        test_loss, test_acc, test_pred = evaluate(model, *splits["test"], cfg.eval_batch_size, device,
                                                  dist=d, amp=cfg.amp)
        fault_point(d, f"kws_train.{name}")  # tests only: fail one named run after training
        if not d.is_main:
            return
        predictions = [Prediction(cache.relpaths[i], cache.words[cache.labels[i]], cache.words[pred])
                       for i, pred in zip(cache.indices("test"), test_pred)]
        write_run(tmp, result.best_state, predictions, TrainedRun(
            condition=condition, replica=replica, seed=seed, torch_seed=torch_seed,
            best_epoch=result.best_epoch, best_val_acc=result.best_val_acc,
            test_acc=test_acc, test_loss=test_loss, epochs=result.epochs_run, max_epochs=cfg.epochs,
            stop=result.stop,
            n_classes=len(cache.words), n_params=sum(p.numel() for p in model.parameters()),
            n_train=int(splits["train"][0].shape[0]), n_validation=int(splits["validation"][0].shape[0]),
            n_test=int(splits["test"][0].shape[0]),
            cfc_impl=mcfg.cfc_impl, wiring=mcfg.wiring, norm_preserve=mcfg.lif.norm_preserve,
            device=str(device), threads=cfg.threads, torch_version=torch.__version__,
            data_sha256=cache.meta["data"]["sha256"],
        ))
    procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
    typer.echo(
        f"kws_train {name}: best val acc {result.best_val_acc:.4f} (epoch {result.best_epoch} of"
        f" {result.epochs_run}, {'stopped at a plateau' if result.stop == 'plateau' else 'all epochs run'}),"
        f" test acc {test_acc:.4f} ({len(cache.words)} classes, chance {1 / len(cache.words):.4f}),"
        f" {result.seconds:.1f} s on {device}{procs} [{mcfg.cfc_impl} CfC, norm_preserve={mcfg.lif.norm_preserve}]"
    )

if __name__ == "__main__":
    run(app)
