"""latents: encode every LibriSpeech utterance >= min_seconds into data/phase0/latents.zarr."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from audioprobe import params
from audioprobe.atomic import atomic_dir, atomic_file, write_json
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.encoders import build_encoder, pick_device
from audioprobe.phase0.latents import extract_latents, index_table, select_utterances
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw/librispeech"), help="download@librispeech output"),
    out: Path = typer.Option(Path("data/phase0"), help="folder for latents.zarr + latents_index.parquet"),
    stats: Path = typer.Option(Path("plots/phase0/latents.json"), help="latents statistics (committed table)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    resume: bool = typer.Option(True, help="continue a matching partial store of an interrupted run"),
) -> None:
    cfg = params.load_group("phase0.latents", params_file)
    enc_cfg = params.load_group("phase0.encoder", params_file)
    device = pick_device(cfg.device, "phase0.latents.device")
    # Weights first: a missing checkpoint should stop the stage before any audio is scanned.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random init is announced once, below
        encoder = build_encoder(enc_cfg, device=device, param="phase0.encoder")
    root = dataset_root(raw)
    source = read_source(raw)
    if encoder.is_random:
        typer.secho(
            f"WARNING: encoder {encoder.provenance['name']} has RANDOM weights (phase0.encoder.weights: "
            "random-init); every metric records weights=random-init", fg="red", err=True,
        )
    items, n_short = select_utterances(root, cfg.subset, cfg.min_seconds, cfg.load_workers)
    typer.echo(f"latents: {len(items)} utterances (dropped {n_short} < {cfg.min_seconds} s) -> "
               f"{encoder.name} {encoder.dim}-d at {encoder.frame_rate:g} Hz on {device}")
    data_prov = {"source": str(source["source"]), "sha256": str(source["sha256"])}
    subset = cfg.subset if isinstance(cfg.subset, str) else ",".join(cfg.subset)
    # Encoding goes to a hidden partial store (not a DVC output, so it survives a failed
    # run and the next run resumes it); only a finished store is moved into place.
    partial = out / ".latents.zarr.partial"
    summary = extract_latents(root, items, encoder, partial, cfg.batch_size, cfg.load_workers,
                              attrs={"data": data_prov}, resume=resume)
    if summary["resumed_utterances"]:
        typer.echo(f"latents: resumed after {summary['resumed_utterances']} utterances already encoded")
    with atomic_file(out / "latents_index.parquet") as tmp_index:
        index_table(items, summary).write_parquet(tmp_index)
    with atomic_dir(out / "latents.zarr") as tmp:
        tmp.rmdir()
        partial.rename(tmp)  # atomic_dir then swaps it in for the old store
    write_json(stats, {
        "encoder": encoder.name,
        "dim": encoder.dim,
        "hop": encoder.hop,
        "frame_rate": encoder.frame_rate,
        "sample_rate": encoder.sample_rate,
        "n_utterances": len(items),
        "n_utterances_too_short": n_short,
        "n_speakers": len({it.utt.speaker for it in items}),
        "n_frames": summary["n_frames_total"],
        "audio_hours": round(sum(it.duration_sec for it in items) / 3600.0, 4),
        "x_mean": summary["x_mean"],
        "x_std": summary["x_std"],
        "nan_count": summary["nan_count"],
        "random_weights": encoder.is_random,
        "weights": {k: str(v) for k, v in encoder.provenance.items()},
        "data": {**data_prov, "subset": subset, "min_seconds": cfg.min_seconds},
    })
    typer.echo(f"latents: {summary['n_frames_total']} frames, x mean {summary['x_mean']:.4g} "
               f"std {summary['x_std']:.4g}, 0 NaN -> {out}")


if __name__ == "__main__":
    run(app)
