"""detect_hygiene: WebRTC VAD on every clean segment; drop what fails, keep each cell's quota."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv
from audioprobe.detect.hygiene import counts, drops, measure, rebalance
from audioprobe.detect.splits import SPLITS, split_counts
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    clips: Path = typer.Option(Path("data/detect/clips")),
    out: Path = typer.Option(Path("data/detect/hygiene")),
    plots: Path = typer.Option(Path("plots/detect/hygiene")),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    ds = params.load_group("detect.dataset", params_file)
    cfg = params.load_group("detect.hygiene", params_file)
    table = pl.read_parquet(clips / "clips.parquet")
    measured = measure(table, clips, cfg)
    kept = rebalance(measured, dict(zip(SPLITS, split_counts(ds.clips_per_cell, ds.split_fractions))))
    with atomic_dir(out) as tmp:
        kept.write_parquet(tmp / "clips.parquet")
        shutil.copyfile(clips / "provenance.json", tmp / "provenance.json")  # the datasets the clips came from
    write_csv(plots / "counts.csv", counts(kept).to_dicts())
    write_csv(plots / "hygiene_drops.csv", drops(measured, kept).to_dicts())
    failed = measured.filter(~pl.col("passes")).height
    typer.echo(f"detect_hygiene: {failed} of {measured.height} candidates fail the VAD rule; kept {kept.height}")


if __name__ == "__main__":
    run(app)
