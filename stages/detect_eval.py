"""detect_eval: every system in detect.eval.systems through one protocol (dev fit, one test pass)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import typer

from audioprobe.runtime import headline, params
from audioprobe.runtime.atomic import write_csv
from audioprobe.detect import figures
from audioprobe.detect.report import headline_values, latency_rows
from audioprobe.detect.evaluate import evaluate_system, load_system
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    clips: Path = typer.Option(Path("data/detect/hygiene/clips.parquet")),
    provenance: Path = typer.Option(Path("data/detect/hygiene/provenance.json")),
    scores: Path = typer.Option(Path("data/detect/scores")),
    plots: Path = typer.Option(Path("plots/detect/eval")),
    host: Path = typer.Option(Path("plots/detect/host"), help="gitignored side folder for timings"),
    metrics: Path = typer.Option(Path("metrics/detect.json")),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.eval", params_file)
    table = pl.read_parquet(clips)
    loaded = {name: load_system(scores, name, table) for name in cfg.systems}  # all inputs checked first
    data = json.loads(provenance.read_text())
    weights = {n: {"source": m["provenance"]["source"], "sha256": m["provenance"]["sha256"]}
               for n, (m, _) in loaded.items() if m["provenance"]["source"] != "no weights"}
    banners = headline.banners(data, weights)
    rng = np.random.default_rng(cfg.seed)
    results = {name: evaluate_system(name, meta, df, cfg, rng) for name, (meta, df) in loaded.items()}
    systems = list(cfg.systems)
    for key, name in (("metrics", "metrics.csv"), ("reliability", "reliability.csv"), ("heatmap", "error_heatmap.csv"),
                      ("errors", "confident_errors.csv"), ("curves", "psychometric.csv"),
                      ("points", "psychometric_points.csv")):
        write_csv(plots / name, [row for s in systems for row in results[s][key]], float_precision=6, allow_empty=True)
    write_csv(plots / "systems.csv", [{**results[s]["fitted"].as_dict(), **loaded[s][0]["provenance"]} for s in systems],
              float_precision=6, allow_empty=True)
    figures.psychometric([c for s in systems for c in results[s]["curves"]],
                         [p for s in systems for p in results[s]["points"]], systems, plots / "psychometric.png", banners)
    figures.reliability([r for s in systems for r in results[s]["reliability"]], systems, plots / "reliability.png", banners)
    figures.confusion(results, systems, plots / "confusion.png", banners)
    figures.error_heatmaps([r for s in systems for r in results[s]["heatmap"]], systems, plots / "error_heatmap.png", banners)
    out = headline.write_headline(metrics, "detect", headline_values(results, systems), data=data, weights=weights,
                                  provenance_path=plots / "provenance.json")
    for s in systems:
        m = next(r for r in results[s]["metrics"] if r["slice"] == "all")
        c = next(r for r in results[s]["curves"] if r["axis"] == "snr" and r["slice"] == "pooled")
        typer.echo(f"{s}: test BA {m['bal_acc']:.3f} [{m['bal_acc_lo']:.3f}, {m['bal_acc_hi']:.3f}] acc {m['accuracy']:.3f} ECE {m['ece']:.3f} "
                   f"DT50 {c.get('dt50_text')} DT75 {c.get('dt75_text')}")
    # Timings are host-dependent: printed and written to the gitignored host/ folder only.
    lat = latency_rows(host, systems, results)
    if lat:
        write_csv(host / "latency.csv", lat, float_precision=6, allow_empty=True)
        figures.pareto(lat, host / "pareto.png", banners)
        for r in lat:
            typer.echo(f"latency {r['system']}: mean {r['latency_ms']:.3f} ms, p95 {r['total_p95_ms']:.3f} ms per clip "
                       f"(this host){' [Pareto]' if r['pareto'] else ''}")
    for b in banners:
        typer.echo(f"WARNING: {b}")
    typer.echo(f"detect_eval: {len(out)} headline keys -> {metrics}")


if __name__ == "__main__":
    run(app)
