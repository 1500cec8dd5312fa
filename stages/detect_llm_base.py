"""detect_llm_base: the audio-LLM base folder (the embedded stand-in's weights, or a record of the real ones)."""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.detect.llm.base import write_base
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    out: Path = typer.Option(Path("data/detect/llm/base")),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("detect.llm.model", params_file)
    with atomic_dir(out) as tmp:
        record = write_base(cfg, tmp)
    typer.echo(f"detect_llm_base: {record['id']} ({record['source']}, weights sha256 {record['sha256'][:12]}) -> {out}")


if __name__ == "__main__":
    run(app)
