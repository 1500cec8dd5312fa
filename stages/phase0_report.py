"""phase0_report: the PASS/FAIL decision, the headline metrics, report.txt and the figures.

Reads the committed tables of phase0_metrics (plots/phase0/*.csv, summary.json) and the
per-cluster diagnostics; writes metrics/phase0.json (a handful of headline numbers via
audioprobe.runtime.headline, provenance in plots/phase0/report/provenance.json), plots/phase0/report/
decision.csv (the decision matrix), report.txt (banners, matrix, templated verdict),
confidence_curve.csv (the rows of the Vega confidence chart) and the PNGs vr_by_slice,
cluster_sizes, cluster_variance, cluster_means_pca and speaker_vr (every title carries
the data's banner).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer
from safetensors.numpy import load_file

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_csv, write_text
from audioprobe.runtime.errors import DataError, ParamsError
from audioprobe.runtime.headline import write_headline
from audioprobe.phase0 import report
from audioprobe.phase0.decision import DecisionRule, decide, decision_rows
from audioprobe.phase0.summary import (
    headline_provenance,
    headline_values,
    lookup,
    scheme_schema,
    table_schema,
)
from stages._run import run

app = typer.Typer(add_completion=False)


def _read_csv(path: Path, schema: dict | None = None) -> list[dict]:
    if not path.exists():
        raise DataError(f"{path} is missing; rerun `dvc repro phase0_metrics`")
    if path.stat().st_size == 0:
        return []
    try:
        return pl.read_csv(path, schema_overrides=schema).to_dicts()
    except pl.exceptions.NoDataError:
        return []


@app.command()
def main(
    tables: Path = typer.Option(Path("plots/phase0/metrics"), help="phase0_metrics tables folder"),
    diagnostics: Path = typer.Option(Path("data/phase0/diagnostics"), help="phase0_metrics diagnostics"),
    metrics: Path = typer.Option(Path("metrics/phase0.json"), help="headline metrics file"),
    plots: Path = typer.Option(Path("plots/phase0/report"), help="report.txt, decision.csv, chart data and PNGs"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.decision", params_file)
    summary_file = tables / "summary.json"
    if not summary_file.exists():
        raise DataError(f"{summary_file} is missing; rerun `dvc repro phase0_metrics`")
    summary = json.loads(summary_file.read_text())
    lags = [int(v) for v in summary["lags"]]
    if cfg.lag not in lags:
        raise ParamsError(f"params.yaml: phase0.decision.lag is {cfg.lag} but phase0.context.lags is {lags}; "
                          "pick one of those lags")
    schemes = list(summary["schemes"])
    flag = float(summary["settings"]["excluded_mass_flag"])
    values = lookup(_read_csv(tables / "tables.csv", table_schema()),
                    _read_csv(tables / "schemes.csv", scheme_schema()))
    rule = DecisionRule(lag=cfg.lag, vr_max=cfg.vr_max, degradation_max=cfg.degradation_max,
                        random_tolerance=cfg.random_tolerance, slice_vr_max=cfg.slice_vr_max,
                        require_low_exclusion=cfg.require_low_exclusion)
    decision = decide(values, schemes, rule)
    marks = report.banners(summary)
    cluster_file = diagnostics / f"clusters_lag{cfg.lag}.safetensors"
    if not cluster_file.exists():
        raise DataError(f"{cluster_file} is missing; rerun `dvc repro phase0_metrics`")
    clusters = load_file(str(cluster_file))
    curve = _read_csv(tables / "confidence.csv")
    speakers = _read_csv(tables / "speakers.csv")
    min_count = int(summary["settings"]["min_cluster_train_samples"])
    report.plot_vr_by_slice(values, schemes, rule, flag, marks, plots / "vr_by_slice.png", decision)
    report.plot_cluster_sizes(clusters, schemes, min_count, cfg.lag, marks, plots / "cluster_sizes.png")
    report.plot_cluster_variance(clusters, schemes, cfg.lag, marks, plots / "cluster_variance.png")
    report.plot_cluster_means(clusters, schemes, cfg.lag, marks, plots / "cluster_means_pca.png")
    notes = report.flag_notes(values, schemes, cfg.lag, flag, decision)
    report.plot_speakers(speakers, schemes, cfg.lag, marks, plots / "speaker_vr.png", notes, rule.vr_max)
    write_csv(plots / "confidence_curve.csv", report.confidence_rows(curve, schemes, rule, marks, notes))
    write_csv(plots / "decision.csv", decision_rows(decision, schemes, rule))
    text = report.render_report(values, decision, schemes, rule, summary)
    write_text(plots / "report.txt", text)
    data, weights, extra = headline_provenance(summary["latents"])
    write_headline(metrics, "phase0", {**headline_values(values, decision, schemes, cfg.lag, flag), **extra},
                   data=data, weights=weights, provenance_path=plots / "provenance.json")
    for line in marks:
        typer.secho(f"WARNING: {line}", fg="red", err=True)
    typer.echo(f"phase0_report: {decision['decision']} at lag {cfg.lag} "
               f"(passing: {decision['passing_schemes'] or 'none'}) -> {plots / 'report.txt'}, {metrics}")


if __name__ == "__main__":
    run(app)
