"""`audioprobe`: the human-facing command (the pipeline itself runs through `dvc repro`)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

from enum import Enum

import typer

from audioprobe.data.layout import DATASETS
from audioprobe.runtime.errors import AudioprobeError

# rich_markup_mode=None: a usage error (an unknown dataset name) is click's plain
# "Error: ... is not one of ..." line, not a boxed panel.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="audioprobe: four audio-representation experiments as one DVC pipeline.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Data: synthesise, check and summarise datasets.")
exp_app = typer.Typer(no_args_is_help=True, help="Experiments: run a lane or a seed through DVC.")
util_app = typer.Typer(no_args_is_help=True, help="Utilities: params check, plots template, benchmarks.")
app.add_typer(data_app, name="data")
app.add_typer(exp_app, name="exp")
app.add_typer(util_app, name="util")

# Every stage is named <lane>_<step> (tests/unit/test_conventions.py pins it), so a lane is the
# glob `<lane>_*`: `dvc repro --glob '<lane>_*'` runs all of its stages and what they need.
LANES = ("data", "kws", "phase0", "detect", "reason")
Lane = Enum("Lane", {name: name for name in LANES if name != "data"}, type=str)
LaneOrAll = Enum("LaneOrAll", {"all": "all", **{name: name for name in LANES}}, type=str)
BENCHES = ("cfc", "encoders", "phase0", "detect", "reason", "dist", "noop", "numerics")
Bench = Enum("Bench", {name: name for name in BENCHES}, type=str)


def exp_show_args(lane: str) -> list[str]:
    """`dvc exp show` options keeping the seed and a lane's few headline columns (its `EXP_SHOW`).

    Every lane's params and metrics together are far wider than a terminal; these fit 200
    columns. `dvc metrics show metrics/<lane>.json` and `dvc exp show --json` have every key.
    """
    import importlib
    import re

    cols = importlib.import_module(f"audioprobe.{lane}.params").EXP_SHOW
    keep = "|".join(re.escape(f"{lane}.{c}") for c in cols)
    return ["exp", "show", "--no-pager", "--precision", "3", "--drop", ".*",
            "--keep", rf"^(Experiment|Created|seed|{keep})$"]


def _fail(exc: AudioprobeError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        from audioprobe import __version__

        typer.echo(f"audioprobe {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the audioprobe version and exit.")) -> None:
    """audioprobe: four audio-representation experiments as one DVC pipeline."""


# Dataset names as a typer choice: an unknown name is one error line listing the valid ones.
Dataset = Enum("Dataset", {d: d for d in DATASETS}, type=str)


@data_app.command("synth")
def data_synth(dataset: Dataset = typer.Argument(..., metavar="DATASET", help="which dataset"),
               out: Path = typer.Option(..., help="folder to write the layout into"),
               params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    """Write the embedded corpus of one dataset (official layout) into OUT."""
    from audioprobe.runtime import params
    from audioprobe.runtime.atomic import atomic_dir
    from audioprobe.data.sources import materialise

    name = dataset.value
    try:
        cfg = params.load_group(f"data.{name}", params_file).model_copy(update={"source": "embedded"})
        with atomic_dir(out) as tmp:
            rec = materialise(name, cfg, tmp)
    except AudioprobeError as exc:
        _fail(exc)
    typer.echo(f"{name}: {rec['files']} files, sha256 {rec['sha256']}")


@data_app.command("check")
def data_check(dataset: Dataset = typer.Argument(..., metavar="DATASET", help="which dataset's layout and rules"),
               root: Path = typer.Argument(..., metavar="ROOT", help="the copy's root folder (official layout)"),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Check a local copy at ROOT: layout and every audio file, all problems listed at once.

    The same checks as `dvc repro data_download@DATASET` (sample rate, duration, silence,
    empty/truncated/stereo/NaN/non-audio files, misnamed or stray files).
    """
    from audioprobe.data.checks import check_dataset, describe_rules

    name = dataset.value
    n_files, problems = check_dataset(name, root, progress=not quiet)
    for p in problems:
        typer.echo(p.line(), err=True)
    rules = "; ".join(r.split(": ", 1)[1] for r in describe_rules(name))
    typer.echo(f"{name}: {n_files} audio files checked, {len(problems)} problem(s) ({rules})")
    raise typer.Exit(1 if problems else 0)


@data_app.command("summary")
def data_summary(raw: Path = typer.Option(Path("data/raw"))) -> None:
    """Print the data_report summary of every downloaded dataset, one line each, named."""
    from audioprobe.data.summary import summarise

    for name in DATASETS:
        try:
            flat, _ = summarise(name, raw / name)
        except AudioprobeError as exc:
            typer.echo(f"{name}: {str(exc).splitlines()[0]}")
            continue
        fields = "  ".join(f"{k.split('.', 1)[1]}={v}" for k, v in flat.items() if k != f"{name}.sha256")
        typer.echo(f"{name}: {fields}")


def _dvc(*args: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "dvc", *args], env=env))


def lane_repro_args(lane: str) -> list[str]:
    """`dvc repro` arguments for the whole pipeline ("all") or every stage of one lane."""
    return ["repro"] if lane == "all" else ["repro", "--glob", f"{lane}_*"]


@exp_app.command("run")
def exp_run(lane: LaneOrAll = typer.Argument(LaneOrAll.all, help="all, or one lane")) -> None:
    """`dvc repro` the whole pipeline, or one lane: `dvc repro --glob '<lane>_*'`."""
    _dvc(*lane_repro_args(lane.value))


@exp_app.command("show")
def exp_show(lane: Lane = typer.Argument(..., help="the lane whose metrics to show")) -> None:
    """`dvc exp show` for one lane: its headline metrics and the seed, provenance dropped."""
    _dvc(*exp_show_args(lane.value))


@exp_app.command("seed")
def exp_seed(seed: int) -> None:
    """`dvc exp run -S seed=SEED`: a new experiment; only seed-dependent stages rerun."""
    _dvc("exp", "run", "-S", f"seed={seed}")


@util_app.command("params")
def util_params(params_file: Path = typer.Argument(Path("params.yaml"))) -> None:
    """Validate a params file against the schema."""
    from audioprobe.runtime import params

    try:
        params.load(params_file)
    except AudioprobeError as exc:
        _fail(exc)
    typer.echo(f"{params_file}: valid")


@util_app.command("plots-template")
def util_plots_template() -> None:
    """Regenerate the offline `dvc plots show` template (Vega inlined from vl-convert)."""
    from audioprobe.tools.plots_template import write

    typer.echo(f"wrote {write()}")


@util_app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def util_bench(ctx: typer.Context, bench: Bench = typer.Argument(..., help="which benchmark")) -> None:
    """Run a benchmark (python -m audioprobe.bench.NAME); extra args pass through."""
    name = bench.value
    sys.argv = [f"audioprobe.bench.{name}", *ctx.args]
    runpy.run_module(f"audioprobe.bench.{name}", run_name="__main__")


if __name__ == "__main__":
    app()
