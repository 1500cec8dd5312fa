"""reason_train_shuffled: the shuffled-audio control of one encoder (each question heard with another clip's audio).

The arm is `shuffled_<encoder>`; training is reason_train's, unchanged. A stage of its own so that it
depends on that encoder's features alone (dvc.yaml).
"""

from __future__ import annotations

from pathlib import Path

import typer

from stages import reason_train
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    encoder: str = typer.Option(..., help="the encoder whose features are heard shuffled"),
    raw: Path = typer.Option(Path("data/raw/reasonaqa")),
    features: Path = typer.Option(Path("data/reason/features")),
    lm_dir: Path = typer.Option(Path("data/reason/lm")),
    out: Path = typer.Option(None, help="run folder (default data/reason/runs/<arm>)"),
    live: Path = typer.Option(None, help="dvclive folder (default plots/reason/train/<arm>)"),
    seed: int = typer.Option(42),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    reason_train.main(f"shuffled_{encoder}", raw, features, lm_dir, out, live, seed, params_file)


if __name__ == "__main__":
    run(app)
