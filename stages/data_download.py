"""data_download@<dataset>: materialise one dataset from its source (embedded/path/url) in the official layout.

Every file is checked (layout and audio, all problems listed at once); on any problem
the stage exits 1 and leaves nothing behind, not even its hidden temp folder.
"""

from __future__ import annotations

import os
import signal
import sys
from enum import Enum
from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.data.layout import DATASETS
from audioprobe.data.sources import materialise
from audioprobe.parallel.procs import exit_on_sigterm
from stages._run import run

app = typer.Typer(add_completion=False)
Dataset = Enum("Dataset", {d: d for d in DATASETS}, type=str)


def _default_term_in_child() -> None:
    # Forked eSpeak workers must keep SIGTERM's default action: Pool.terminate() stops
    # them with it, and a Python-level handler never runs in a worker blocked in C (a
    # lock inherited mid-fork), which would hang the stage.
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread of this (child) interpreter
        pass


@app.command()
def main(
    dataset: Dataset = typer.Option(..., help="the dataset to materialise"),
    out: Path = typer.Option(None, help="output folder (default data/raw/<dataset>)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    name = dataset.value
    cfg = params.load_group(f"data.{name}", params_file)
    out = out or Path("data/raw") / name
    # SIGTERM (dvc's cancellation, `kill`) would end Python without unwinding, leaving the
    # hidden `.<dataset>.tmp` folder behind; as SystemExit, atomic_dir removes it. A SIGKILL
    # cannot be caught: atomic_dir removes that stale folder on the next run.
    exit_on_sigterm()
    os.register_at_fork(after_in_child=_default_term_in_child)
    with atomic_dir(out) as tmp:
        rec = materialise(name, cfg, tmp, progress=sys.stderr.isatty())
    typer.echo(f"{name}: {rec['files']} audio files from {rec['source']} (sha256 {rec['sha256'][:12]}), all checks passed")


if __name__ == "__main__":
    run(app)
