"""speaker_split: seeded train / eval speakers of the encoded utterances, plus a train hold-out."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.phase0.speaker_split import split_speakers, write_split
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    index: Path = typer.Option(Path("data/phase0/latents/index.parquet"), help="phase0_latents' store index"),
    out: Path = typer.Option(Path("data/phase0/splits"), help="folder for the id lists"),
    seed: int = typer.Option(..., help="the global seed (params.yaml: seed)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.split", params_file)
    table = pl.read_parquet(index, columns=["utterance_id", "speaker_id"])
    split = split_speakers(
        table["utterance_id"].to_list(), table["speaker_id"].cast(pl.String).to_list(),
        seed=seed, eval_fraction=cfg.eval_fraction, heldout_fraction=cfg.heldout_fraction,
    )
    with atomic_dir(out) as tmp:
        write_split(split, tmp)
    typer.echo(
        f"speaker_split (seed {seed}): {len(split.train_speakers)} train / {len(split.eval_speakers)} eval "
        f"speakers; utterances {len(split.train_utts)} train, {len(split.heldout_utts)} held out, "
        f"{len(split.eval_utts)} eval -> {out}"
    )


if __name__ == "__main__":
    run(app)
