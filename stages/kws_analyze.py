"""kws_analyze: organisation metrics per layer, accuracy across replicas, base vs lif test."""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_csv
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.headline import banner_text, banners, with_banner, write_headline
from audioprobe.kws.features import load_feature_cache
from audioprobe.kws.fire_stats import layer_stats, model_fire_counts, threshold_stats
from audioprobe.kws.net import CONDITIONS, build_kws_net
from audioprobe.kws.runs import read_predictions, read_run, run_dir
from audioprobe.kws.summary import (
    RunSummary,
    best_run,
    combined_checkpoint_sha256,
    comparison_rows,
    condition_rows,
    confusion_rows,
    headline_values,
    layer_rows,
    layer_run_rows,
    per_class_rows,
    run_rows,
    seed_reference_rows,
    threshold_rows,
)
from stages._run import run

app = typer.Typer(add_completion=False)
# Every file this stage writes under --plots (dvc.yaml declares each one).
TABLES = ("runs.csv", "conditions.csv", "layers.csv", "layers_by_run.csv", "thresholds.csv", "confusion.csv",
          "per_class.csv", "comparison.csv", "seed_reference.csv", "provenance.json")
# The tables dvc.yaml charts: each carries the data's banner column, which their templates draw.
CHARTED = ("layers.csv", "thresholds.csv", "confusion.csv", "comparison.csv")


def _num(value, spec: str) -> str:
    """A number as `spec` for the console, a status string (n/a) as it is."""
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _load_run(runs_dir: Path, condition: str, replica: int, mcfg, held_x, cfg) -> RunSummary:
    kws_run = read_run(run_dir(runs_dir, condition, replica))
    model = build_kws_net(mcfg, condition, n_classes=kws_run.n_classes)
    kws_run.load_into(model)
    counts = model_fire_counts(model, held_x, batch_size=cfg.batch_size, bins=cfg.entropy_bins,
                               fire_threshold=cfg.fire_threshold)
    layers = [layer_stats(c, cfg.always_on_rate, cfg.selective_rate) for c in counts]
    thetas = model.thresholds()
    for layer, theta in zip(layers, thetas):
        layer.update(threshold_stats(theta))
    return RunSummary(condition, replica, kws_run.result, layers, [t.tolist() for t in thetas])


@app.command()
def main(
    features: Path = typer.Option(Path("data/kws/features"), help="kws_features output"),
    runs_dir: Path = typer.Option(Path("data/kws/runs"), "--runs", help="kws_train outputs"),
    metrics_out: Path = typer.Option(Path("metrics/kws.json"), "--metrics"),
    plots_dir: Path = typer.Option(Path("plots/kws/analyze"), "--plots"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    import torch

    kws = params.load_group("kws", params_file)
    cfg, mcfg = kws.analyze, kws.model
    cache = load_feature_cache(features)
    held_x, _ = cache.tensors(cache.held_out(cfg.clips))  # fixed set: first N test clips by file name
    if held_x.shape[0] == 0:
        raise DataError(f"{features}: the test split is empty; no held-out clips to analyse")
    torch.set_num_threads(kws.train.threads)

    # Loop over the params' replicas, never over the folder: a removed matrix item leaves
    # its old run folder behind. Everything is read and computed before anything is
    # written, so a bad run folder leaves the last good metrics and plots in place.
    runs = [_load_run(runs_dir, c, r, mcfg, held_x, cfg) for c in CONDITIONS for r in kws.train.replicas]

    words = cache.words
    best = best_run(runs)
    preds = read_predictions(run_dir(runs_dir, best.condition, best.replica), words, features)
    actual, predicted = [p.actual for p in preds], [p.predicted for p in preds]
    data = {"speech_commands": {"source": cache.meta["data"]["source"], "sha256": cache.meta["data"]["sha256"]}}
    weights = {"kws_net": {"source": "trained-here", "sha256": combined_checkpoint_sha256(runs)}}
    values = headline_values(runs, chance_acc=1.0 / len(words), n_test=cache.meta["split_counts"]["test"])
    tables = {
        "runs.csv": run_rows(runs),
        "conditions.csv": condition_rows(runs),
        "layers.csv": layer_rows(runs),
        "layers_by_run.csv": layer_run_rows(runs),
        "thresholds.csv": threshold_rows(runs),
        "confusion.csv": confusion_rows(actual, predicted, words),
        "per_class.csv": per_class_rows(actual, predicted, words),
        "comparison.csv": comparison_rows(runs),
        "seed_reference.csv": seed_reference_rows(),
    }

    banner = banner_text(data, weights)
    for name, rows in tables.items():
        write_csv(plots_dir / name, with_banner(rows, banner) if name in CHARTED else rows)
    m = write_headline(metrics_out, "kws", values, data=data, weights=weights,
                       provenance_path=plots_dir / "provenance.json")

    for cond in CONDITIONS:
        lo, hi = m[f"kws.{cond}.test_acc.ci95_low"], m[f"kws.{cond}.test_acc.ci95_high"]
        ci = f"[{lo:.4f}, {hi:.4f}]" if isinstance(lo, float) else lo
        typer.echo(f"kws {cond}: test acc {m[f'kws.{cond}.test_acc.mean']:.4f} CI95 {ci}"
                   f" (chance {values['chance_acc']:.4f}, {len(kws.train.replicas)} replicas)")
    gain = tables["comparison.csv"][0]
    typer.echo(f"kws lif gain: {_num(gain['gain'], '+.4f')} CI95 [{_num(gain['gain_ci95_low'], '+.4f')},"
               f" {_num(gain['gain_ci95_high'], '+.4f')}], paired t p = {_num(gain['p'], '.3g')} ({gain['status']});"
               f" lif entropy hierarchy: {m['kws.hierarchy']} (peak at layer {m['kws.lif.entropy.peak_layer']});"
               f" best run {best.name}")
    for b in banners(data, weights):
        typer.echo(f"kws: WARNING: {b}")


if __name__ == "__main__":
    run(app)
