"""phase0_tier1_latents@<enc>: one representation (mel | mimi | encodec) of phase0's utterances at its NATIVE rate.

Outputs, per encoder `<enc>` of phase0.tier1.encoders (the dvc.yaml foreach):

    data/phase0/tier1/latents/<enc>/        an encoder store (audioprobe.encoders.store), as phase0_latents
    plots/phase0/tier1_latents/<enc>/latents.json   statistics: encoder, dim, hop, frame_rate,
        sample_rate, n_utterances, n_frames, x_mean, x_std, random_weights, weights (provenance), data

The utterances are phase0.latents' (same subset and min_seconds, same id order), so
data/phase0/splits applies to every representation. Frames are at the encoder's native
rate (mel: phase0.tier1.mel.mel_frame_rate, 50 Hz; Mimi 12.5 Hz; EnCodec 75 Hz);
audioprobe.phase0.tier1.rates pools them to phase0.tier1.common_rate. Encoder settings:
phase0.tier1.<enc> (random-init tiny Mimi / EnCodec in the embedded default). Sharded
under torchrun like `phase0_latents` (phase0.latents.nproc).
"""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.errors import ParamsError
from audioprobe.phase0.latents import encode_stage
from stages._run import run

app = typer.Typer(add_completion=False)
ENCODERS = ("mel", "mimi", "encodec")


@app.command()
def main(
    encoder: str = typer.Option(..., help="mel | mimi | encodec"),
    raw: Path = typer.Option(Path("data/raw/librispeech"), help="data_download@librispeech output"),
    out: Path = typer.Option(None, help="the encoder store folder (default data/phase0/tier1/latents/<encoder>)"),
    stats: Path = typer.Option(None, help="statistics JSON (default plots/phase0/tier1_latents/<encoder>/latents.json)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    resume: bool = typer.Option(True, help="continue a matching partial store of an interrupted run"),
) -> None:
    if encoder not in ENCODERS:
        raise ParamsError(f"params.yaml: phase0.tier1.encoders: unknown encoder {encoder!r} (one of {ENCODERS})")
    out = out or Path("data/phase0/tier1/latents") / encoder
    stats = stats or Path("plots/phase0/tier1_latents") / encoder / "latents.json"
    cfg = params.load_group("phase0.latents", params_file)
    enc_cfg = {"name": encoder, **getattr(params.load_group("phase0.tier1", params_file), encoder).model_dump()}
    encode_stage(f"phase0_tier1_latents@{encoder}", cfg, enc_cfg, f"phase0.tier1.{encoder}", raw, out, stats, resume, params_file)


if __name__ == "__main__":
    run(app)
