"""download@<dataset>: materialise one dataset from its source (embedded/path/url) in the official layout."""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe import params
from audioprobe.atomic import atomic_dir
from audioprobe.data.layout import DATASETS
from audioprobe.data.sources import materialise
from audioprobe.errors import ParamsError
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = typer.Option(..., help=f"one of {', '.join(DATASETS)}"),
    out: Path = typer.Option(None, help="output folder (default data/raw/<dataset>)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    if dataset not in DATASETS:
        raise ParamsError(f"--dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    cfg = params.load_group(f"data.{dataset}", params_file)
    out = out or Path("data/raw") / dataset
    with atomic_dir(out) as tmp:
        rec = materialise(dataset, cfg, tmp)
    typer.echo(f"{dataset}: {rec['files']} audio files from {rec['source']} (sha256 {rec['sha256'][:12]})")


if __name__ == "__main__":
    run(app)
