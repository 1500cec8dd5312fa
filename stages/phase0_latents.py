"""phase0_latents: every LibriSpeech utterance >= min_seconds through phase0.encoder, into the
encoder store data/phase0/latents/ (audioprobe.encoders.store).

Runs as one process, or sharded under torchrun (`python -m audioprobe.parallel.launch --nproc N
-m stages.phase0_latents ...`, chosen by phase0.latents.nproc in dvc.yaml): each rank encodes a
contiguous run of blocks, rank 0 merges.
"""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.phase0.latents import encode_stage
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw/librispeech"), help="data_download@librispeech output"),
    out: Path = typer.Option(Path("data/phase0/latents"), help="the encoder store folder"),
    stats: Path = typer.Option(Path("plots/phase0/latents/latents.json"), help="latents statistics (committed table)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    resume: bool = typer.Option(True, help="continue a matching partial store of an interrupted run"),
) -> None:
    cfg = params.load_group("phase0.latents", params_file)
    enc_cfg = params.load_group("phase0.encoder", params_file)
    encode_stage("latents", cfg, enc_cfg, "phase0.encoder", raw, out, stats, resume, params_file)


if __name__ == "__main__":
    run(app)
