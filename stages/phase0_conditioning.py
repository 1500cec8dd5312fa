"""conditioning_fit: PCA / k-means / quartile bins fitted on train speakers, and every assignment.

Writes data/phase0/conditioning/ (layout: audioprobe.phase0.fit_store): the Δx normalisation,
per lag the fitted arrays and every split's assignments, and fit.json. Step timings are
printed, never written: every output is byte-identical across runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.runtime.errors import DataError
from audioprobe.phase0.latents import open_latents
from audioprobe.phase0.conditioning import KMEANS_INIT, FitSettings, fit_and_assign, n_clusters
from audioprobe.phase0.fit_store import FitInfo, write_info, write_lag, write_target_norm
from audioprobe.phase0.frames import first_target, read_split_rows
from audioprobe.phase0.target import fit_delta_norm
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    latents: Path = typer.Option(Path("data/phase0/latents"), help="phase0_latents' encoder store"),
    frames: Path = typer.Option(Path("data/phase0/phase0_frames.parquet"), help="frames stage index"),
    out: Path = typer.Option(Path("data/phase0/conditioning"), help="output folder"),
    seed: int = typer.Option(42, help="global seed (params.yaml `seed`)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    ctx = params.load_group("phase0.context", params_file)
    cfg = params.load_group("phase0.conditioning", params_file)
    settings = FitSettings.from_params(ctx, cfg, seed)
    rows = read_split_rows(frames)
    if "train" not in rows:
        raise DataError(f"{frames}: no train-split rows; rerun `dvc repro phase0_frames`")
    first = min(int(r[0]) for r in rows.values())
    if first < first_target(ctx.window, ctx.lags):
        raise DataError(f"{frames}: row {first} has no full context for window {ctx.window} and lags "
                        f"{ctx.lags}; the frames stage ran with other phase0.context params — rerun it")
    x = open_latents(latents).x  # (N, D) float32
    mean, std = fit_delta_norm(x, rows["train"])
    per_lag: dict[int, dict] = {}
    with atomic_dir(out) as tmp:
        write_target_norm(tmp, mean, std)
        for lag in ctx.lags:
            timings: dict[str, float] = {}
            tensors, lag_info, asg = fit_and_assign(x, rows, lag, settings, timings)
            write_lag(tmp, lag, tensors, rows, asg)
            per_lag[lag] = lag_info
            typer.echo(f"conditioning_fit: lag {lag} fitted {', '.join(settings.schemes)} on "
                       f"{rows['train'].size} train contexts (k-means on {lag_info['kmeans_fit_samples']}); wall s: "
                       + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
        write_info(tmp, FitInfo(
            seed=seed, window=ctx.window, lags=list(ctx.lags), schemes=list(settings.schemes),
            n_clusters={s: n_clusters(s, settings) for s in settings.schemes}, kmeans_init=KMEANS_INIT,
            kmeans_n_init=cfg.kmeans_n_init, kmeans_max_iter=cfg.kmeans_max_iter, kmeans_tol=cfg.kmeans_tol,
            rows={s: int(r.size) for s, r in rows.items()}, dim=int(x.shape[1]), per_lag=per_lag))
    typer.echo(f"conditioning_fit: -> {out}")


if __name__ == "__main__":
    run(app)
