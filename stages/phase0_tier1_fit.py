"""tier1_vmf / tier1_mdn: train and evaluate one model family for every encoder × rate × gap k.

`--family vmf` (vMF direction × LogNormal magnitude) or `--family mdn` (mixture of diagonal
Gaussians over Δx). Writes `--out` (data/phase0/tier1/<family>/): safetensors checkpoints +
JSON sidecars, and eval.json with one eval row per representation × k; definitions in
lib/audioprobe/phase0/README.md, "Tier 1".
"""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.errors import ParamsError
from audioprobe.phase0.tier1.pipeline import train_stage
from stages._run import run

app = typer.Typer(add_completion=False)
FAMILIES = ("vmf", "mdn")


@app.command()
def main(
    family: str = typer.Option(..., help="vmf | mdn"),
    latents: Path = typer.Option(Path("data/phase0/tier1/latents"), help="tier1_latents root (<encoder>/...)"),
    splits: Path = typer.Option(Path("data/phase0/splits"), help="speaker_split output"),
    out: Path = typer.Option(None, help="checkpoints + eval.json (default data/phase0/tier1/<family>)"),
    seed: int = typer.Option(0, help="global seed"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    if family not in FAMILIES:
        raise ParamsError(f"tier1_fit: --family must be one of {FAMILIES}, got {family!r}")
    out = out or Path("data/phase0/tier1") / family
    cfg = params.load_group("phase0.tier1", params_file)
    result = train_stage(family, cfg, latents, splits, out, seed, log=typer.echo)
    typer.echo(f"tier1_{family}: {len(result['rows'])} eval rows -> {out / 'eval.json'}")


if __name__ == "__main__":
    run(app)
