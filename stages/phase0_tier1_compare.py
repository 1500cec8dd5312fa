"""tier1_compare: one table over encoder × rate × model × k, the headline and the report.

Reads data/phase0/tier1/{vmf,mdn}/eval.json and plots/phase0/tier1_injection/injection.csv; writes
plots/phase0/tier1_compare/{comparison.csv, by_k.csv, report.txt, provenance.json} and
metrics/phase0_tier1.json (keys phase0.tier1.*; lane README, "Tier 1").
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_csv, write_text
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.headline import with_row_banners, write_headline
from audioprobe.phase0.tier1.compare import banners, comparison_rows, headline_values, provenance, render_report
from audioprobe.phase0.tier1.figures import by_k_rows, csv_ready
from stages._run import run

app = typer.Typer(add_completion=False)


def _read_json(path: Path, stage: str) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing; run `dvc repro {stage}`")
    return json.loads(path.read_text())


@app.command()
def main(
    vmf: Path = typer.Option(Path("data/phase0/tier1/vmf"), help="phase0_tier1_fit@vmf output"),
    mdn: Path = typer.Option(Path("data/phase0/tier1/mdn"), help="phase0_tier1_fit@mdn output"),
    injection: Path = typer.Option(Path("plots/phase0/tier1_injection/injection.csv"), help="phase0_tier1_injection table"),
    plots: Path = typer.Option(Path("plots/phase0/tier1_compare"), help="tables and report"),
    metrics: Path = typer.Option(Path("metrics/phase0_tier1.json"), help="headline metrics"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.tier1", params_file)
    evals = [_read_json(vmf / "eval.json", "phase0_tier1_fit@vmf"), _read_json(mdn / "eval.json", "phase0_tier1_fit@mdn")]
    if not injection.is_file():
        raise DataError(f"{injection} is missing; run `dvc repro phase0_tier1_injection`")
    inj = pl.read_csv(injection).to_dicts()
    rows = comparison_rows(evals, list(cfg.encoders))
    write_csv(plots / "comparison.csv", csv_ready(rows))
    data, weights, extra = provenance(evals)
    # the chart's banner per row: synthetic data on all, random-init only on a random encoder's series
    write_csv(plots / "by_k.csv", csv_ready(with_row_banners(by_k_rows(rows), data, weights, "encoder", "series")))
    marks = banners(data, weights)
    steps = cfg.injection.steps
    write_text(plots / "report.txt", render_report(rows, inj, marks, steps, cfg.common_rate))
    write_headline(metrics, "phase0.tier1", {**headline_values(rows, inj, steps, cfg.common_rate), **extra},
                   data=data, weights=weights, provenance_path=plots / "provenance.json")
    for line in marks:
        typer.secho(f"WARNING: {line}", fg="red", err=True)
    typer.echo(f"tier1_compare: {len(rows)} rows -> {plots / 'comparison.csv'}, {metrics}")


if __name__ == "__main__":
    run(app)
