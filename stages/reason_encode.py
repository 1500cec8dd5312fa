"""reason_encode: every clip of the ReasonAQA splits through one encoder -> zarr + parquet index.

Runs as one process or as N torchrun workers (`python -m audioprobe.parallel.launch --nproc N -m
stages.reason_encode ...`, params reason.encode.nproc): rank r encodes every N-th batch into
its partial folder under --partial (kept after a failure: the next run resumes it), rank 0
merges them into the store one process writes, then removes the partial folders.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import typer

from audioprobe.parallel import dist

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.reasonaqa import SPLITS, load_split, split_clips
from audioprobe.runtime.errors import DataError
from audioprobe.reason.features import build_reason_encoder, encode_clips, encode_shard, merge_shards, shard_dir
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    encoder: str = typer.Option(..., help="mel | htsat | mimi_semantic | mimi_full"),
    raw: Path = typer.Option(Path("data/raw/reasonaqa"), help="data_download@reasonaqa output"),
    out: Path = typer.Option(None, help="output folder (default data/reason/features/<encoder>)"),
    partial: Path = typer.Option(Path("data/reason/.encode-partial"),
                                 help="per-rank partial folders of a sharded run, under <partial>/<encoder> (not a DVC output)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason.encode", params_file)
    cfgs = params.load_group("reason.encoders", params_file)
    out = out or Path("data/reason/features") / encoder
    partial = partial / encoder
    # A dead rank fails its peers at once; the long timeout only lets ranks wait for slower shards.
    with dist.session(cfg.device, "reason.encode.device", timeout_s=7 * 24 * 3600.0) as d:
        _encode(d, encoder, cfg, cfgs, raw, out, partial, params_file)


def _encode(d: dist.Dist, encoder: str, cfg, cfgs, raw: Path, out: Path, partial: Path, params_file: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random init is announced once, below
        enc = build_reason_encoder(encoder, cfgs, d.device)  # weights first: fail before reading audio
    if enc.is_random and d.is_main:
        typer.secho(f"WARNING: encoder {encoder} has RANDOM weights (reason.encoders.{encoder}.allow_random_init); "
                    "every metric, plot title and report line says random-init", fg="red", err=True)
    root = dataset_root(raw, params_file)
    source = read_source(raw)
    rows = [r for s in SPLITS for r in load_split(root, s)]  # every missing file of every split is listed
    clips = split_clips(rows)
    meta = {"data": {"source": str(source["source"]), "sha256": str(source["sha256"])}}
    if not d.distributed:
        with atomic_dir(out) as tmp:
            summary = encode_clips(root, clips, enc, cfg.max_seconds, cfg.batch_size, tmp, meta)
    else:
        nan, waves = encode_shard(root, clips, enc, cfg.max_seconds, cfg.batch_size, partial, d)
        nan = int(d.all_reduce_sum([nan])[0])  # also waits until every shard is complete
        if nan:
            raise DataError(f"{enc.name}: {nan} NaN feature values; check the encoder weights")
        if not d.is_main:
            return
        with atomic_dir(out) as tmp:
            summary = merge_shards(clips, waves, enc, cfg.max_seconds, cfg.batch_size, partial, d.world, tmp, meta)
        for r in range(d.world):
            shutil.rmtree(shard_dir(partial, r, d.world), ignore_errors=True)
        for folder in (partial, partial.parent):  # leave no empty partial folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
    print(f"reason_encode: {encoder} {summary['dim']}-d at {summary['frame_rate']:g} Hz, "
          f"{summary['clips']} clips, {summary['frames']} frames -> {out}{procs}")
    sys.stdout.flush()


if __name__ == "__main__":
    run(app)
