"""phase0_report: the PASS/FAIL decision, report.txt and the diagnostic plots.

Writes metrics/phase0_decision.json (flat, JSON numbers/strings/bools), plots/phase0/
report.txt (decision matrix with the numbers, a templated verdict, and a WARNING when
the encoder was random-init), plots/phase0/confidence_curve.csv (DVC plot data) and the
PNGs: cluster_sizes, cluster_variance, cluster_means_pca, confidence_curve, speaker_vr.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer
from safetensors.numpy import load_file

from audioprobe import params
from audioprobe.atomic import atomic_file, write_json, write_text
from audioprobe.errors import DataError, ParamsError
from audioprobe.phase0 import report
from audioprobe.phase0.decision import DecisionRule, decide
from stages._run import run

app = typer.Typer(add_completion=False)

SCHEME_COLUMNS = ("mean_vq64", "pca8_vq256", "pca8_quartile")


def _rows(path: Path) -> list[dict]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        return pl.read_csv(path).to_dicts()
    except pl.exceptions.NoDataError:
        return []


@app.command()
def main(
    metrics: Path = typer.Option(Path("metrics/phase0.json"), help="phase0_metrics output"),
    diagnostics: Path = typer.Option(Path("data/phase0/diagnostics"), help="phase0_metrics diagnostics"),
    decision: Path = typer.Option(Path("metrics/phase0_decision.json"), help="decision (flat JSON)"),
    plots: Path = typer.Option(Path("plots/phase0"), help="report.txt, plot data and PNGs"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.decision", params_file)
    m = json.loads(metrics.read_text())
    lags = [int(v) for v in str(m["lags"]).split(",")]
    if cfg.lag not in lags:
        raise ParamsError(f"params.yaml: phase0.decision.lag is {cfg.lag} but phase0.context.lags is {lags}; "
                          "pick one of those lags")
    schemes = str(m["schemes"]).split(",")
    rule = DecisionRule(lag=cfg.lag, vr_max=cfg.vr_max, degradation_max=cfg.degradation_max,
                        random_tolerance=cfg.random_tolerance, slice_vr_max=cfg.slice_vr_max,
                        require_low_exclusion=cfg.require_low_exclusion)
    out = decide(m, schemes, rule)
    out["random_init"] = bool(m.get("latents.random_init", False))
    out["encoder"] = str(m.get("latents.encoder", "unknown"))
    out["weights"] = str(m.get("latents.provenance.weights", "unknown"))
    out["weights_sha256"] = str(m.get("latents.provenance.sha256", "unknown"))
    text = report.render_report(m, out, schemes, rule)
    cluster_file = diagnostics / f"clusters_lag{cfg.lag}.safetensors"
    if not cluster_file.exists():
        raise DataError(f"{cluster_file} is missing; rerun `dvc repro phase0_metrics`")
    clusters = load_file(str(cluster_file))
    curve = _rows(diagnostics / "confidence.csv")
    speakers = _rows(diagnostics / "speakers.csv")
    min_count = int(m.get("settings.min_cluster_train_samples", 100))
    report.plot_cluster_sizes(clusters, schemes, min_count, cfg.lag, plots / "cluster_sizes.png")
    report.plot_cluster_variance(clusters, schemes, cfg.lag, plots / "cluster_variance.png")
    report.plot_cluster_means(clusters, schemes, cfg.lag, plots / "cluster_means_pca.png")
    report.plot_confidence(curve, schemes, cfg.lag, plots / "confidence_curve.png")
    report.plot_speakers(speakers, schemes, cfg.lag, plots / "speaker_vr.png")
    # DVC plot data: one column per scheme × split (fixed names so dvc.yaml can list them;
    # a scheme left out of phase0.conditioning.schemes leaves its columns empty).
    keep = sorted({r["keep_pct"] for r in curve if r["lag"] == cfg.lag})
    wide = {"keep_pct": keep}
    for s in SCHEME_COLUMNS:
        for split in ("train", "eval"):
            by_q = {r["keep_pct"]: r["vr_train_means"] for r in curve
                    if r["lag"] == cfg.lag and r["scheme"] == s and r["split"] == split}
            wide[f"{s}_{split}"] = [by_q.get(q) for q in keep]
    with atomic_file(plots / "confidence_curve.csv") as tmp:
        pl.DataFrame(wide, schema={k: pl.Float64 for k in wide}).write_csv(tmp, float_precision=6)
    write_text(plots / "report.txt", text)
    write_json(decision, out)
    if out["random_init"]:
        typer.secho("WARNING: phase0 latents come from a RANDOM-INIT encoder; see report.txt", fg="red", err=True)
    typer.echo(f"phase0_report: {out['decision']} at lag {cfg.lag} "
               f"(passing: {out['passing_schemes'] or 'none'}) -> {plots / 'report.txt'}")


if __name__ == "__main__":
    run(app)
