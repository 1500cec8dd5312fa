"""Encode every clip once per encoder into a zarr store + parquet index, and read them back.

Store layout (one folder per encoder): `features.zarr` with `x` [total frames, dim]
float32 (clips back to back, in index order), `index.parquet` with one row per clip
{clip, start, frames, seconds}, and `encoder.json` (dim, rates, provenance, data).
Clips are cut to `max_seconds` before encoding (the origin's 10 s cap).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import zarr

from audioprobe.audio.io import AudioError, read_audio
from audioprobe.audio.resample import resample
from audioprobe.encoders.interface import Encoder
from audioprobe.errors import DataError


def load_waves(root: Path, clips: list[str], sample_rate: int, max_seconds: float) -> list[np.ndarray]:
    """Return each clip as float32 mono at `sample_rate`, cut to max_seconds; DataError listing bad files."""
    waves, bad = [], []
    limit = int(round(max_seconds * sample_rate))
    for c in clips:
        try:
            wave, sr = read_audio(root / c)
        except AudioError as exc:
            bad.append(str(exc))
            continue
        waves.append(resample(wave, sr, sample_rate)[:limit])
    if bad:
        raise DataError(f"{len(bad)} unreadable clips: {'; '.join(bad)}")
    return waves


def encode_clips(root: Path, clips: list[str], encoder: Encoder, max_seconds: float, batch_size: int,
                 out: Path, meta: dict) -> dict:
    """Write features.zarr + index.parquet + encoder.json for `clips` into `out`; return the summary."""
    waves = load_waves(root, clips, encoder.sample_rate, max_seconds)
    frames = np.array([encoder.num_frames(w.shape[0]) for w in waves], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64)
    total = int(frames.sum())
    group = zarr.open_group(str(out / "features.zarr"), mode="w", zarr_format=3)
    x = group.create_array("x", shape=(total, encoder.dim), chunks=(min(max(total, 1), 16384), encoder.dim),
                           dtype="float32")
    order = np.argsort([w.shape[0] for w in waves], kind="stable")  # similar lengths share a batch
    nan = 0
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        for i, feats in zip(idx, encoder.encode_batch([waves[i] for i in idx])):
            nan += int(np.isnan(feats).sum())
            x[int(starts[i]): int(starts[i] + frames[i])] = feats
    if nan:
        raise DataError(f"{encoder.name}: {nan} NaN feature values; check the encoder weights")
    pl.DataFrame({
        "clip": clips, "start": starts, "frames": frames,
        "seconds": [round(w.shape[0] / encoder.sample_rate, 4) for w in waves],
    }).write_parquet(out / "index.parquet")
    summary = {
        "encoder": encoder.name, "dim": encoder.dim, "sample_rate": encoder.sample_rate,
        "frame_rate": encoder.frame_rate, "clips": len(clips), "frames": total,
        "max_seconds": max_seconds, "provenance": encoder.provenance, **meta,
    }
    (out / "encoder.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def read_features(folder: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Return ({clip: float32 [frames, dim]}, encoder.json) of one encoder's store."""
    folder = Path(folder)
    if not (folder / "index.parquet").is_file():
        raise DataError(f"{folder}: no encoded features; run `dvc repro reason_encode` first")
    index = pl.read_parquet(folder / "index.parquet")
    x = zarr.open_group(str(folder / "features.zarr"), mode="r")["x"][:]  # (total, dim)
    feats = {c: x[s: s + n] for c, s, n in index.select("clip", "start", "frames").iter_rows()}
    return feats, json.loads((folder / "encoder.json").read_text())


def build_reason_encoder(name: str, cfgs, device, param_prefix: str = "reason.encoders") -> Encoder:
    """Return the encoder `name` (mel | htsat | mimi_semantic | mimi_full) configured by `reason.encoders.<name>`."""
    cfg = getattr(cfgs, name)
    param = f"{param_prefix}.{name}"
    if name == "mel":
        from audioprobe.encoders.mel import MelEncoder

        return MelEncoder(sample_rate=cfg.sample_rate, frame_rate=cfg.frame_rate, n_mels=cfg.n_mels).to(device)
    if name == "htsat":
        from audioprobe.encoders.htsat import load_htsat

        return load_htsat(cfg.weights, allow_random_init=cfg.allow_random_init, init_seed=cfg.init_seed,
                          device=device, param=param)
    if name in ("mimi_semantic", "mimi_full"):
        from audioprobe.encoders.mimi_codes import load_mimi_codes

        return load_mimi_codes(cfg.weights, codebooks=1 if name == "mimi_semantic" else 8, size=cfg.mimi_size,
                               allow_random_init=cfg.allow_random_init, init_seed=cfg.init_seed,
                               device=device, param=param)
    raise DataError(f"unknown encoder {name!r}")
