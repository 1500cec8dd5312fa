"""phase0_metrics: every metric for every scheme × lag × split × slice, as committed tables.

Writes plots/phase0/ tables (definitions in lib/audioprobe/phase0/README.md):
tables.csv (one row per lag × scheme × split × slice), schemes.csv (one row per lag ×
scheme: cluster counts, fit sizes), speakers.csv (per-speaker VR), confidence.csv (VR of
the top-q % most confident contexts) and summary.json (provenance, rows and speakers per
split, settings); plus data/phase0/diagnostics/ (per-cluster arrays for the report's
figures). The headline metrics file is written by phase0_report from these tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from safetensors.numpy import save_file

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv, write_json
from audioprobe.phase0.evaluate import Assignment, MetricSettings, evaluate_lag, read_split_data
from audioprobe.phase0.fit_store import read_assignments, read_info, read_target_norm
from audioprobe.phase0.latents import open_latents
from audioprobe.phase0.summary import latents_provenance, scheme_rows, table_rows
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    latents: Path = typer.Option(Path("data/phase0/latents"), help="phase0_latents' encoder store"),
    frames: Path = typer.Option(Path("data/phase0/phase0_frames.parquet"), help="frames stage index"),
    conditioning: Path = typer.Option(Path("data/phase0/conditioning"), help="conditioning_fit output"),
    tables: Path = typer.Option(Path("plots/phase0/metrics"), help="folder for the committed tables"),
    diagnostics: Path = typer.Option(Path("data/phase0/diagnostics"), help="arrays for the report plots"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.metrics", params_file)
    settings = MetricSettings(
        min_cluster_train_samples=cfg.min_cluster_train_samples, min_speaker_samples=cfg.min_speaker_samples,
        excluded_mass_flag=cfg.excluded_mass_flag, medial_pos_frac=tuple(cfg.medial_pos_frac),
        confidence_keep_pct=tuple(float(q) for q in cfg.confidence_keep_pct),
    )
    fit = read_info(conditioning)
    store = open_latents(latents)
    x = store.x  # (N, D) float32
    splits = read_split_data(frames, settings.medial_pos_frac)
    mean, std = read_target_norm(conditioning)
    speaker_sets = {s: set(d.speaker_names) for s, d in splits.items()}
    train_speakers = speaker_sets.get("train", set())
    summary = {
        "latents": latents_provenance(store.meta),
        "seed": fit.seed, "window": fit.window, "lags": list(fit.lags), "schemes": list(fit.schemes),
        "rows": {s: int(d.rows.size) for s, d in splits.items()},
        # Held-out utterances come from train speakers: count them as such, not as new speakers.
        "speakers": {**{s: len(v) for s, v in speaker_sets.items()},
                     "total": len(set().union(*speaker_sets.values())) if speaker_sets else 0,
                     "heldout_also_in_train": len(speaker_sets.get("heldout", set()) & train_speakers),
                     "eval_also_in_train": len(speaker_sets.get("eval", set()) & train_speakers)},
        "settings": {"min_cluster_train_samples": settings.min_cluster_train_samples,
                     "min_speaker_samples": settings.min_speaker_samples,
                     "excluded_mass_flag": settings.excluded_mass_flag,
                     "medial_pos_frac": list(settings.medial_pos_frac),
                     "kmeans_n_init": fit.kmeans_n_init,
                     "kmeans_max_iter": fit.kmeans_max_iter,
                     "kmeans_tol": fit.kmeans_tol},
    }
    rows, schemes, curves, speakers = [], [], [], []
    with atomic_dir(diagnostics) as tmp:
        for lag in fit.lags:
            ids = read_assignments(conditioning, lag, fit.schemes, {s: d.rows for s, d in splits.items()})
            assignments = {scheme: {split: Assignment(*v) for split, v in per.items()} for scheme, per in ids.items()}
            res = evaluate_lag(x, splits, assignments, fit.n_clusters, mean, std, settings, lag)
            rows.extend(table_rows(lag, res.metrics))
            schemes.extend(scheme_rows(lag, res.metrics, fit.per_lag[lag]))
            curves.extend({"lag": lag, **r} for r in res.curve)
            speakers.extend({"lag": lag, **r} for r in res.speakers)
            save_file({f"{scheme}.{k}": np.ascontiguousarray(v, dtype=np.float64)
                       for scheme, arrays in res.clusters.items() for k, v in arrays.items()},
                      str(tmp / f"clusters_lag{lag}.safetensors"))
            evals = {s: res.metrics[s].get("eval", {}).get("all", {}) for s in fit.schemes}
            typer.echo(f"phase0_metrics: lag {lag}: eval VR " + ", ".join(
                f"{s} {e.get('vr') if e.get('vr') is None else round(e['vr'], 3)} "
                f"(excluded {e.get('excluded_mass') if e.get('excluded_mass') is None else round(e['excluded_mass'], 3)})"
                for s, e in evals.items()))
    write_csv(tables / "tables.csv", rows, float_precision=6)
    write_csv(tables / "schemes.csv", schemes, float_precision=6)
    write_csv(tables / "speakers.csv", speakers, float_precision=6)
    write_csv(tables / "confidence.csv", curves, float_precision=6)
    write_json(tables / "summary.json", summary)
    typer.echo(f"phase0_metrics: {len(rows)} table rows -> {tables}/tables.csv")


if __name__ == "__main__":
    run(app)
