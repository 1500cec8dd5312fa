"""phase0_metrics: every metric for every scheme × lag × split × slice (EXPERIMENTS.md §2).

Writes metrics/phase0.json (flat keys such as `lag1.mean_vq64.eval.all.vr`, plus the
latents' provenance copied from latents.zarr), plots/phase0/tables.csv (one row per
lag × scheme × split × slice) and data/phase0/diagnostics/ (per-cluster arrays,
per-speaker VRs and the confidence curves the report plots).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import typer
import zarr
from safetensors.numpy import load_file, save_file

from audioprobe import params
from audioprobe.atomic import atomic_dir, atomic_file, write_json
from audioprobe.errors import DataError
from audioprobe.phase0.evaluate import Assignment, MetricSettings, evaluate_lag, split_data
from audioprobe.phase0.summary import flatten, latents_provenance, table_rows
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    latents: Path = typer.Option(Path("data/phase0/latents.zarr"), help="latents stage store"),
    frames: Path = typer.Option(Path("data/phase0/phase0_frames.parquet"), help="frames stage index"),
    conditioning: Path = typer.Option(Path("data/phase0/conditioning"), help="conditioning_fit output"),
    metrics: Path = typer.Option(Path("metrics/phase0.json"), help="flat metrics file"),
    tables: Path = typer.Option(Path("plots/phase0/tables.csv"), help="metrics table"),
    diagnostics: Path = typer.Option(Path("data/phase0/diagnostics"), help="arrays for the report plots"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.metrics", params_file)
    settings = MetricSettings(
        min_cluster_train_samples=cfg.min_cluster_train_samples, min_speaker_samples=cfg.min_speaker_samples,
        excluded_mass_flag=cfg.excluded_mass_flag, medial_pos_frac=tuple(cfg.medial_pos_frac),
        confidence_keep_pct=tuple(float(q) for q in cfg.confidence_keep_pct),
    )
    fit = json.loads((conditioning / "fit.json").read_text())
    store = zarr.open_group(str(latents), mode="r")
    x = np.asarray(store["x"][:], dtype=np.float32)  # (N, D)
    table = pl.read_parquet(frames, columns=["row", "speaker_id", "split", "pos_frac", "is_high_energy"])
    splits = split_data(table, settings.medial_pos_frac)
    norm = load_file(str(conditioning / "target_norm.safetensors"))
    flat: dict = {**latents_provenance(dict(store.attrs)), "seed": int(fit["seed"]), "window": int(fit["window"]),
                  "lags": ",".join(str(v) for v in fit["lags"]), "schemes": ",".join(fit["schemes"]),
                  **{f"rows.{s}": int(d.rows.size) for s, d in splits.items()},
                  **{f"speakers.{s}": len(d.speaker_names) for s, d in splits.items()},
                  "settings.min_cluster_train_samples": settings.min_cluster_train_samples,
                  "settings.min_speaker_samples": settings.min_speaker_samples,
                  "settings.excluded_mass_flag": settings.excluded_mass_flag,
                  "settings.kmeans_n_init": int(fit["kmeans"]["n_init"]),
                  "settings.kmeans_max_iter": int(fit["kmeans"]["max_iter"])}
    rows, curves, speakers = [], [], []
    with atomic_dir(diagnostics) as tmp:
        for lag in fit["lags"]:
            asg_file = load_file(str(conditioning / f"lag{lag}_assignments.safetensors"))
            assignments: dict[str, dict[str, Assignment]] = {s: {} for s in fit["schemes"]}
            for split, sd in splits.items():
                if not np.array_equal(asg_file.get(f"{split}.rows"), sd.rows):
                    raise DataError(f"{conditioning}: {split} rows differ from {frames}; rerun "
                                    "`dvc repro conditioning_fit`")
                for scheme in fit["schemes"]:
                    assignments[scheme][split] = Assignment(
                        asg_file[f"{scheme}.{split}.labels"], asg_file[f"{scheme}.{split}.distance"],
                        asg_file[f"{scheme}.{split}.random_labels"])
            res = evaluate_lag(x, splits, assignments, fit["n_clusters"], norm["mean"], norm["std"], settings, lag)
            lag_info = fit["per_lag"][str(lag)]
            for scheme in fit["schemes"]:
                m = res.metrics[scheme]
                m["fit_samples"] = int(lag_info.get(scheme, {}).get("fit_samples", 0))
                if scheme in ("mean_vq64", "pca8_vq256"):
                    m["inertia_per_sample"] = float(lag_info[scheme]["inertia_per_sample"])
                    m["kmeans_n_iter"] = int(lag_info[scheme]["n_iter"])
            if "pca" in lag_info:
                flat[f"lag{lag}.pca.fit_samples"] = int(lag_info["pca"]["fit_samples"])
                flat[f"lag{lag}.pca.explained_variance_ratio_sum"] = float(
                    lag_info["pca"]["explained_variance_ratio_sum"])
            flat.update(flatten(f"lag{lag}", res.metrics))
            rows.extend(table_rows(lag, res.metrics))
            curves.extend({"lag": lag, **r} for r in res.curve)
            speakers.extend({"lag": lag, **r} for r in res.speakers)
            save_file({f"{scheme}.{k}": np.ascontiguousarray(v, dtype=np.float64)
                       for scheme, arrays in res.clusters.items() for k, v in arrays.items()},
                      str(tmp / f"clusters_lag{lag}.safetensors"))
            best = min(((s, res.metrics[s].get("eval", {}).get("all", {}).get("vr")) for s in fit["schemes"]),
                       key=lambda t: 9.0 if t[1] is None else t[1])
            typer.echo(f"phase0_metrics: lag {lag}: lowest eval VR {best[1]} ({best[0]})")
        pl.DataFrame(curves, infer_schema_length=None).write_csv(tmp / "confidence.csv")
        pl.DataFrame(speakers, infer_schema_length=None).write_csv(tmp / "speakers.csv")
    with atomic_file(tables) as tmp_table:
        pl.DataFrame(rows, infer_schema_length=None).write_csv(tmp_table, float_precision=6)
    write_json(metrics, flat)
    typer.echo(f"phase0_metrics: {len(flat)} keys -> {metrics}")


if __name__ == "__main__":
    run(app)
