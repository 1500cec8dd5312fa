"""detect_llm_base: the audio-LLM base folder (the embedded stand-in, pretrained here; or a record of the real weights)."""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.detect.llm.base import Pretraining, write_base
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    out: Path = typer.Option(Path("data/detect/llm/base")),
    clips: Path = typer.Option(Path("data/detect/clips"), help="detect_dataset's folder: the pretraining material"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.llm", params_file)
    with atomic_dir(out) as tmp:
        record = write_base(cfg.model, tmp, Pretraining(clips, cfg.pretrain, progress=True))
    pre = record["pretraining"]
    if isinstance(pre, dict):
        pre = (f"pretrained here {pre['steps']} steps on {pre['train_segments']} train-split segments, "
               f"loss {pre['loss_first_10pct']:.3f} -> {pre['loss_last_10pct']:.3f}")
    typer.echo(f"detect_llm_base: {record['id']} ({record['source']}; {pre}; weights sha256 {record['sha256'][:12]})"
               f" -> {out}")


if __name__ == "__main__":
    run(app)
