"""reason_encode@<encoder>: every clip of the ReasonAQA splits through one encoder, into its encoder store.

Runs as one process or as N torchrun workers (`python -m audioprobe.parallel.launch --nproc N -m
stages.reason_encode ...`, params reason.encode.nproc): each rank encodes a contiguous run of
whole blocks into its own partial store (kept after a failure: the next run resumes it), rank 0
merges them into the store one process writes (audioprobe.encoders.store).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.reasonaqa import SPLITS, load_split, split_clips
from audioprobe.encoders import build_encoder
from audioprobe.parallel import dist
from audioprobe.reason.features import encode_clips
from audioprobe.runtime import params
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    encoder: str = typer.Option(..., help="mel | htsat | mimi_semantic | mimi_full"),
    raw: Path = typer.Option(Path("data/raw/reasonaqa"), help="data_download@reasonaqa output"),
    out: Path = typer.Option(None, help="the encoder store folder (default data/reason/features/<encoder>)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason.encode", params_file)
    enc_cfg = {"name": encoder, **getattr(params.load_group("reason.encoders", params_file), encoder).model_dump()}
    out = out or Path("data/reason/features") / encoder
    # A dead rank fails its peers at once; the long timeout only lets ranks wait for slower shards.
    with dist.session(cfg.device, "reason.encode.device", timeout_s=7 * 24 * 3600.0) as d:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a random init is announced once, below
            enc = build_encoder(enc_cfg, d.device, param=f"reason.encoders.{encoder}")  # before reading audio
        if enc.is_random and d.is_main:
            typer.secho(f"WARNING: encoder {encoder} has RANDOM weights (reason.encoders.{encoder}.allow_random_init);"
                        " every metric, plot title and report line says random-init", fg="red", err=True)
        root = dataset_root(raw, params_file)
        source = read_source(raw)
        rows = [r for s in SPLITS for r in load_split(root, s)]  # every missing file of every split is listed
        data = {"source": str(source["source"]), "sha256": str(source["sha256"])}
        summary = encode_clips(root, split_clips(rows), enc, cfg.max_seconds, cfg.batch_size, out, data, d,
                               progress=d.is_main)  # tqdm: every 15 s in a log, live on a terminal
    if summary is not None:
        procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
        print(f"reason_encode: {encoder} {summary['dim']}-d at {summary['frame_rate']:g} Hz, "
              f"{summary['n_items']} clips, {summary['n_frames']} frames -> {out}{procs}")


if __name__ == "__main__":
    run(app)
