"""detect_dataset: the factorial speech/non-speech clip set (candidates before hygiene)."""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv, write_json
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.detect.clips import build, candidate_counts
from audioprobe.runtime.digest import write_digest
from stages._run import run

app = typer.Typer(add_completion=False)


def needed(cfg) -> list[str]:
    """Datasets this configuration reads (speech_commands always: the background noises)."""
    out = {*cfg.speech_sources, "speech_commands"}
    if {"environment", "animals"} & set(cfg.nonspeech_types):
        out.add("esc50")
    if {"music", "noise"} & set(cfg.nonspeech_types):
        out.add("musan")
    return sorted(out)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw"), help="folder holding data/raw/<dataset>"),
    out: Path = typer.Option(Path("data/detect/clips")),
    counts: Path = typer.Option(Path("plots/detect/dataset/dataset_counts.csv")),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.dataset", params_file)
    names = needed(cfg)
    roots = {d: dataset_root(raw / d, params_file) for d in names}
    provenance = {d: {k: read_source(raw / d)[k] for k in ("source", "sha256")} for d in names}
    with atomic_dir(out) as tmp:
        table = build(cfg, roots, tmp)
        table.write_parquet(tmp / "clips.parquet")
        write_json(tmp / "provenance.json", provenance)
        write_digest(tmp)  # consumers depend on clips/digest.json, not on thousands of wavs
    write_csv(counts, candidate_counts(table).to_dicts())
    typer.echo(f"detect_dataset: {table.height} candidate clips "
               f"({len(cfg.durations_ms)} durations x {len(cfg.snrs_db)} SNRs x 2 classes) -> {out}")


if __name__ == "__main__":
    run(app)
