"""phase0_frames: the phase0 frame index (polars parquet) of targets with a full context at every lag."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_json
from audioprobe.phase0.frames import SPLITS, build_frames, first_target, write_frames
from audioprobe.phase0.latents import open_latents
from audioprobe.phase0.speaker_split import read_split
from audioprobe.phase0.summary import latents_provenance
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    latents: Path = typer.Option(Path("data/phase0/latents"), help="phase0_latents' encoder store"),
    splits: Path = typer.Option(Path("data/phase0/splits"), help="speaker_split output"),
    out: Path = typer.Option(Path("data/phase0/phase0_frames.parquet"), help="frame index"),
    stats: Path = typer.Option(Path("plots/phase0/frames/frames.json"), help="frame counts (committed table)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.frames", params_file)
    ctx = params.load_group("phase0.context", params_file)
    store = open_latents(latents)
    table, energy = store.index, store.energy
    split = read_split(splits)
    frames, threshold = build_frames(
        table, energy, split.split_of(), ctx.window, ctx.lags, cfg.high_energy_quantile
    )
    write_frames(frames, out)
    counts = {s: frames.filter(pl.col("split") == s) for s in SPLITS}
    write_json(stats, {
        "latents": latents_provenance(store.meta),  # data and encoder weights the frames came from
        "window": ctx.window,
        "lags": list(ctx.lags),
        "first_t": first_target(ctx.window, ctx.lags),
        "high_energy_quantile": cfg.high_energy_quantile,
        "high_energy_threshold": threshold,
        "n_rows": frames.height,
        "rows": {s: c.height for s, c in counts.items()},
        "utterances": {s: c["utterance_id"].n_unique() for s, c in counts.items()},
        "speakers": {s: c["speaker_id"].n_unique() for s, c in counts.items()},
        "utterances_without_rows": int(table.height - frames["utterance_id"].n_unique()),
    })
    typer.echo(f"frames: {frames.height} rows (t >= {first_target(ctx.window, ctx.lags)}; "
               + ", ".join(f"{s} {c.height}" for s, c in counts.items()) + f") -> {out}")


if __name__ == "__main__":
    run(app)
