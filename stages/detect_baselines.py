"""detect_baselines: per-clip speech scores of WebRTC VAD, Silero VAD and an energy detector."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv, write_json
from audioprobe.detect.latency import summary
from audioprobe.detect.vad import BASELINES, make, score_clips
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    clips: Path = typer.Option(Path("data/detect/clips")),
    kept: Path = typer.Option(Path("data/detect/hygiene/clips.parquet")),
    out: Path = typer.Option(Path("data/detect/scores")),
    host: Path = typer.Option(Path("plots/detect/host"), help="gitignored side folder for timings"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.baselines", params_file)
    table = pl.read_parquet(kept).sort("clip_id")
    for name in BASELINES:
        scorer = make(name, cfg)
        scores, lat = score_clips(scorer, clips, table["audio"].to_list(), table["duration_ms"].to_list())
        with atomic_dir(out / name) as tmp:
            pl.DataFrame({"clip_id": table["clip_id"], "score": pl.Series(scores, dtype=pl.Float64)}).write_parquet(
                tmp / "scores.parquet")
            write_json(tmp / "system.json", {"system": name, "score_kind": scorer.kind,
                                             "provenance": scorer.provenance()})
        per_clip = pl.DataFrame(lat).with_columns(table["clip_id"])
        write_csv(host / f"latency_{name}.csv", per_clip.to_dicts())
        s = summary(name, per_clip)
        typer.echo(f"{name}: {table.height} clips scored; latency per clip (this host, CPU) mean "
                   f"{s['total_mean_ms']:.3f} ms, p95 {s['total_p95_ms']:.3f} ms "
                   f"(load {s['load_mean_ms']:.3f}, features {s['features_mean_ms']:.3f}, "
                   f"model {s['model_mean_ms']:.3f}, post {s['post_mean_ms']:.3f})")


if __name__ == "__main__":
    run(app)
