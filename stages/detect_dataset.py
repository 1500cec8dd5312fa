"""detect_dataset: the factorial speech/non-speech clip set (candidates before hygiene).

Besides the clips, it says what a researcher must know about the draw, printed (one line each)
and in plots/detect/dataset/: the ESC-50 classes left out (esc50_excluded.csv), every source a
cell cannot use at some duration (sources.csv), and the cells that needed more candidates than
clips x oversample to pass the hygiene rule (draws.csv).
"""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv, write_json
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.detect.clips import build, candidate_counts, left_out_lines
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
    counts: Path = typer.Option(Path("plots/detect/dataset/dataset_counts.csv"),
                                help="the candidate counts; its folder gets the other tables"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.dataset", params_file)
    hygiene = params.load_group("detect.hygiene", params_file)
    names = needed(cfg)
    roots = {d: dataset_root(raw / d, params_file) for d in names}
    provenance = {d: {k: read_source(raw / d)[k] for k in ("source", "sha256")} for d in names}
    with atomic_dir(out) as tmp:
        built = build(cfg, roots, tmp, hygiene)
        table = built.table
        table.write_parquet(tmp / "clips.parquet")
        write_json(tmp / "provenance.json", provenance)
        write_digest(tmp)  # consumers depend on clips/digest.json, not on thousands of wavs
    write_csv(counts, candidate_counts(table).to_dicts())
    write_csv(counts.parent / "draws.csv", built.draws)
    write_csv(counts.parent / "sources.csv", built.source_use)
    write_csv(counts.parent / "esc50_excluded.csv",
              [{"category": c, "files": n} for c, n in built.esc50_excluded.items()], allow_empty=True)
    if built.esc50_excluded:
        typer.echo("detect_dataset: ESC-50 categories left out of NONSPEECH (detect.dataset.esc50_excluded): "
                   + ", ".join(f"{c} {n} files" for c, n in built.esc50_excluded.items()))
    for line in left_out_lines(built.source_use):
        typer.echo(f"detect_dataset: {line}")
    more = [d for d in built.draws if d["candidates"] > d["first_round"]]
    short = [d for d in built.draws if d["short"]]
    first = sum(d["first_round"] for d in built.draws)
    most = max(more, key=lambda d: d["candidates"] / d["quota"], default=None)  # one cell: its draws and quota
    worst = (f", at most {most['candidates']} for a quota of {most['quota']} ({most['label']} {most['duration_ms']} ms "
             f"{most['snr_db']:+g} dB, {most['split']})") if most else ""
    typer.echo(f"detect_dataset: {table.height} candidate clips drawn "
               f"({len(cfg.durations_ms)} durations x {len(cfg.snrs_db)} SNRs x 2 classes x 3 splits; "
               f"{first} in the first round, clips x oversample {cfg.oversample:g}; {len(more)} cell(s) x split "
               f"needed more to pass the hygiene rule{worst}: draws.csv) -> {out}")
    for d in short:
        typer.echo(f"detect_dataset: WARNING: cell {d['label']} {d['duration_ms']} ms {d['snr_db']:+g} dB, split "
                   f"{d['split']}: {d['short']} ({d['candidates']} drawn); detect_hygiene will stop there: raise "
                   f"detect.dataset.max_oversample, add source files or relax detect.hygiene")


if __name__ == "__main__":
    run(app)
