"""kws_features: log-mel features of every Speech Commands clip, cached for every kws run."""

from __future__ import annotations

from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.speech_commands import list_clips
from audioprobe.kws.features import write_feature_cache
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw/speech_commands"), help="data_download@speech_commands output"),
    out: Path = typer.Option(Path("data/kws/features"), help="feature cache folder"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("kws.features", params_file)
    root = dataset_root(raw, params_file)
    source = read_source(raw)
    clips = list_clips(root)
    with atomic_dir(out) as tmp:
        # data_download@speech_commands already hashed every file it provides (tree hash for
        # embedded, per-file manifest for a local copy, archive hash for url).
        meta = write_feature_cache(root, clips, tmp, n_mels=cfg.n_mels, n_fft=cfg.n_fft, hop=cfg.hop,
                                   data={"source": str(source["source"]), "sha256": str(source["sha256"])})
    counts = ", ".join(f"{k} {v}" for k, v in meta["split_counts"].items())
    typer.echo(f"kws_features: {meta['n_clips']} clips ({counts}), {len(meta['words'])} words -> {out}")


if __name__ == "__main__":
    run(app)
