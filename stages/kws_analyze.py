"""kws_analyze: organisation metrics per layer, accuracy across replicas, base vs lif test."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import typer

from audioprobe import params
from audioprobe.atomic import atomic_dir, atomic_file, write_csv, write_json
from audioprobe.errors import DataError
from audioprobe.features.kws_mel import load_feature_cache
from audioprobe.metrics.classification import confusion_matrix, per_class_accuracy
from audioprobe.metrics.fire_stats import layer_stats, model_fire_counts, threshold_stats
from audioprobe.metrics.kws_summary import (
    RunSummary,
    comparison_rows,
    curve_rows,
    kws_metrics,
    layer_rows,
    threshold_rows,
)
from audioprobe.models.kws_net import CONDITIONS, build_kws_net
from audioprobe.provenance import flat_provenance
from stages._run import run

app = typer.Typer(add_completion=False)


def _read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


@app.command()
def main(
    features: Path = typer.Option(Path("data/kws/features"), help="kws_features output"),
    runs_dir: Path = typer.Option(Path("data/kws/runs"), "--runs", help="kws_train outputs"),
    metrics_out: Path = typer.Option(Path("metrics/kws.json"), "--metrics"),
    plots_dir: Path = typer.Option(Path("plots/kws"), "--plots"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    import torch
    from safetensors.torch import load_file

    from audioprobe.figures.kws import curves_png, organisation_png

    kws = params.load(params_file).kws
    cfg, mcfg = kws.analyze, kws.model
    cache = load_feature_cache(features)
    held_x, held_y = cache.tensors(cache.held_out(cfg.clips))  # fixed set: first N test clips by file name
    if held_x.shape[0] == 0:
        raise DataError(f"{features}: the test split is empty; no held-out clips to analyse")
    torch.set_num_threads(kws.train.threads)

    runs: list[RunSummary] = []
    # Loop over the params' replicas, never over the folder: a removed matrix item leaves
    # its old run folder behind.
    for condition in CONDITIONS:
        for replica in kws.train.replicas:
            run_dir = runs_dir / f"{condition}-{replica}"
            if not (run_dir / "result.json").is_file():
                raise DataError(f"{run_dir}: no result.json; run `dvc repro kws_train` first")
            result = json.loads((run_dir / "result.json").read_text())
            model = build_kws_net(mcfg, condition, n_classes=result["n_classes"])
            try:
                model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
            except RuntimeError:
                raise DataError(f"{run_dir}/model.safetensors does not match params.yaml kws.model;"
                                " rerun `dvc repro kws_train`") from None
            counts = model_fire_counts(model, held_x, batch_size=cfg.batch_size, bins=cfg.entropy_bins,
                                       fire_threshold=cfg.fire_threshold)
            layers = [layer_stats(c, cfg.always_on_rate, cfg.selective_rate) for c in counts]
            thetas = model.thresholds()
            for layer, theta in zip(layers, thetas):
                layer.update(threshold_stats(theta))
            runs.append(RunSummary(condition, replica, result, _read_history(run_dir / "history.csv"),
                                   layers, [t.tolist() for t in thetas]))

    n_classes = len(cache.words)
    metrics = {
        **flat_provenance("data", cache.meta["data"]),
        # Trained from scratch by kws_train: no pretrained weights; each run's
        # checkpoint is named by its sha256 below (<condition>.r<replica>.checkpoint_sha256).
        "weights": "trained-from-scratch",
        **flat_provenance("model", {
            "cfc_impl": mcfg.cfc_impl, "wiring": mcfg.wiring, "norm_preserve": mcfg.lif.norm_preserve,
            "n_layer": mcfg.n_layer, "n_embd": mcfg.n_embd, "units": mcfg.units,
            **{f"n_params.{r.condition}": r.result["n_params"] for r in runs},
        }),
        "train.epochs": kws.train.epochs,
        "train.replicas": len(kws.train.replicas),
        "data.n_classes": n_classes,
        "data.n_train": cache.meta["split_counts"]["train"],
        "data.n_validation": cache.meta["split_counts"]["validation"],
        "data.n_test": cache.meta["split_counts"]["test"],
        "analyze.clips": int(held_x.shape[0]),
        "analyze.words": len(set(held_y.tolist())),
        "chance_acc": 1.0 / n_classes,
        **kws_metrics(runs),
    }
    best_dir = runs_dir / metrics["best_model.run"]
    with open(best_dir / "test_predictions.csv", newline="") as f:
        confusion = [{"actual": r["actual"], "predicted": r["predicted"]} for r in csv.DictReader(f)]
    word_id = {w: i for i, w in enumerate(cache.words)}
    cm = confusion_matrix([word_id[r["actual"]] for r in confusion], [word_id[r["predicted"]] for r in confusion],
                          n_classes)  # (actual, predicted)
    per_word = per_class_accuracy(cm)
    metrics["best_model.worst_word"] = cache.words[int(np.nanargmin(per_word))]
    metrics["best_model.worst_word_acc"] = float(np.nanmin(per_word))
    layers = layer_rows(runs)
    thresholds = threshold_rows(runs)

    write_json(metrics_out, metrics)
    write_csv(plots_dir / "layers.csv", layers)
    write_csv(plots_dir / "thresholds.csv", thresholds)
    write_csv(plots_dir / "confusion.csv", confusion)
    write_csv(plots_dir / "comparison.csv", comparison_rows(metrics))
    with atomic_dir(plots_dir / "curves") as tmp:
        for r in runs:
            write_csv(tmp / f"{r.name}.csv", curve_rows(r))
    with atomic_file(plots_dir / "curves.png") as tmp:
        curves_png(runs, tmp)
    with atomic_file(plots_dir / "organisation.png") as tmp:
        organisation_png(layers, thresholds, tmp)

    for cond in CONDITIONS:
        sd = metrics[f"{cond}.test_acc.std"]
        sd = f"{sd:.4f}" if isinstance(sd, float) else sd
        ent = " / ".join(f"{metrics[f'{cond}.layer{i}.entropy']:.3f}" for i in range(mcfg.n_layer))
        typer.echo(f"kws {cond}: test acc {metrics[f'{cond}.test_acc.mean']:.4f} ± {sd}"
                   f" (chance {1 / n_classes:.4f}); entropy by layer {ent}"
                   f" -> {metrics[f'{cond}.hierarchy.entropy']}")
    typer.echo(f"kws paired t-test lif vs base: p = {metrics.get('ttest.p_value')} ({metrics.get('ttest.status')})")


if __name__ == "__main__":
    run(app)
