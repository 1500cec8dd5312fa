"""`audioprobe`: the human-facing command (the pipeline itself runs through `dvc repro`)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import typer

from audioprobe.errors import AudioprobeError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="audioprobe: four audio-representation experiments as one DVC pipeline.")
data_app = typer.Typer(no_args_is_help=True, help="Data: synthesise, check and summarise datasets.")
exp_app = typer.Typer(no_args_is_help=True, help="Experiments: run a lane or a seed through DVC.")
util_app = typer.Typer(no_args_is_help=True, help="Utilities: params check, plots template, benchmarks.")
app.add_typer(data_app, name="data")
app.add_typer(exp_app, name="exp")
app.add_typer(util_app, name="util")

LANES = {"data": "data_report", "kws": "kws_analyze", "phase0": "phase0_report"}
BENCHES = ("cfc", "encoders", "phase0")


def _fail(exc: AudioprobeError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@data_app.command("synth")
def data_synth(dataset: str, out: Path = typer.Option(..., help="folder to write the layout into"),
               params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    """Write the embedded corpus of one dataset (official layout) into OUT."""
    from audioprobe import params
    from audioprobe.atomic import atomic_dir
    from audioprobe.data.sources import materialise

    try:
        cfg = params.load_group(f"data.{dataset}", params_file).model_copy(update={"source": "embedded"})
        with atomic_dir(out) as tmp:
            rec = materialise(dataset, cfg, tmp)
    except AudioprobeError as exc:
        _fail(exc)
    typer.echo(f"{dataset}: {rec['files']} files, sha256 {rec['sha256']}")


@data_app.command("check")
def data_check(dataset: str, root: Path) -> None:
    """Check a local copy at ROOT: official layout and every audio file readable."""
    from audioprobe.audio.io import check_audio_files
    from audioprobe.data.sources import LAYOUTS

    try:
        files = LAYOUTS[dataset].audio_files(root)
    except AudioprobeError as exc:
        _fail(exc)
    bad = check_audio_files(files)
    for line in bad:
        typer.echo(line, err=True)
    typer.echo(f"{dataset}: {len(files)} audio files, {len(bad)} bad")
    raise typer.Exit(1 if bad else 0)


@data_app.command("summary")
def data_summary(raw: Path = typer.Option(Path("data/raw"))) -> None:
    """Print the data_report summary of every downloaded dataset."""
    from audioprobe.data.layout import DATASETS
    from audioprobe.data.summary import summarise

    for name in DATASETS:
        try:
            flat, _ = summarise(name, raw / name)
        except AudioprobeError as exc:
            typer.echo(f"{name}: {exc}")
            continue
        typer.echo("  ".join(f"{k.split('.', 1)[1]}={v}" for k, v in flat.items() if k != f"{name}.sha256"))


def _dvc(*args: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "dvc", *args], env=env))


@exp_app.command("run")
def exp_run(lane: str = typer.Argument("all", help=f"all or one of {', '.join(LANES)}")) -> None:
    """`dvc repro` the whole pipeline or one lane."""
    if lane != "all" and lane not in LANES:
        typer.echo(f"error: lane {lane!r} is not one of all, {', '.join(LANES)}", err=True)
        raise typer.Exit(2)
    _dvc("repro", *([] if lane == "all" else [LANES[lane]]))


@exp_app.command("seed")
def exp_seed(seed: int) -> None:
    """`dvc exp run -S seed=SEED`: a new experiment; only seed-dependent stages rerun."""
    _dvc("exp", "run", "-S", f"seed={seed}")


@util_app.command("params")
def util_params(params_file: Path = typer.Argument(Path("params.yaml"))) -> None:
    """Validate a params file against the schema."""
    from audioprobe import params

    try:
        params.load(params_file)
    except AudioprobeError as exc:
        _fail(exc)
    typer.echo(f"{params_file}: valid")


@util_app.command("plots-template")
def util_plots_template() -> None:
    """Regenerate the offline `dvc plots show` template (Vega inlined from vl-convert)."""
    from audioprobe.plots_template import write

    typer.echo(f"wrote {write()}")


@util_app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def util_bench(ctx: typer.Context, name: str = typer.Argument(..., help=", ".join(BENCHES))) -> None:
    """Run a benchmark (python -m audioprobe.bench.NAME); extra args pass through."""
    if name not in BENCHES:
        typer.echo(f"error: bench {name!r} is not one of {', '.join(BENCHES)}", err=True)
        raise typer.Exit(2)
    sys.argv = [f"audioprobe.bench.{name}", *ctx.args]
    runpy.run_module(f"audioprobe.bench.{name}", run_name="__main__")


if __name__ == "__main__":
    app()
