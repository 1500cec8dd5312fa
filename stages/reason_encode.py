"""reason_encode: every clip of the ReasonAQA splits through one encoder -> zarr + parquet index."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from audioprobe import params
from audioprobe.atomic import atomic_dir
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.encoders import pick_device
from audioprobe.reason.features import build_reason_encoder, encode_clips
from audioprobe.reason.rows import SPLITS, load_rows, split_clips
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    encoder: str = typer.Option(..., help="mel | htsat | mimi_semantic | mimi_full"),
    raw: Path = typer.Option(Path("data/raw/reasonaqa"), help="download@reasonaqa output"),
    out: Path = typer.Option(None, help="output folder (default data/reason/features/<encoder>)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason.encode", params_file)
    cfgs = params.load_group("reason.encoders", params_file)
    out = out or Path("data/reason/features") / encoder
    device = pick_device(cfg.device, "reason.encode.device")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random init is announced once, below
        enc = build_reason_encoder(encoder, cfgs, device)  # weights first: fail before reading audio
    if enc.is_random:
        typer.secho(f"WARNING: encoder {encoder} has RANDOM weights (reason.encoders.{encoder}.allow_random_init); "
                    "every metric, plot title and report line says random-init", fg="red", err=True)
    root = dataset_root(raw)
    source = read_source(raw)
    rows = [r for s in SPLITS for r in load_rows(root, s)]  # every missing file of every split is listed
    clips = split_clips(rows)
    with atomic_dir(out) as tmp:
        summary = encode_clips(root, clips, enc, cfg.max_seconds, cfg.batch_size, tmp,
                               {"data": {"source": str(source["source"]), "sha256": str(source["sha256"])}})
    typer.echo(f"reason_encode: {encoder} {summary['dim']}-d at {summary['frame_rate']:g} Hz, "
               f"{summary['clips']} clips, {summary['frames']} frames -> {out}")


if __name__ == "__main__":
    run(app)
