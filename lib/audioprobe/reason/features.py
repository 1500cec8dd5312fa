"""Encode every clip once per encoder into a zarr store + parquet index, and read them back.

Store layout (one folder per encoder): `features.zarr` with `x` [total frames, dim]
float32 (clips back to back, in index order), `index.parquet` with one row per clip
{clip, start, frames, seconds}, and `encoder.json` (dim, rates, provenance, data).
Clips are cut to `max_seconds` before encoding (the origin's 10 s cap).

Sharded encoding (torchrun, audioprobe.parallel.dist; `encode_shard` + `merge_shards`): clips are
sorted by length and cut into batches exactly as one process cuts them; rank r encodes
batches r, r + N, ... (so every batch, and with it every clip's features, is the one a
single process computes) into its own partial folder, one .npy per batch (a rerun after a
failure resumes from the batches already written), and rank 0 writes them into the store
in one process's order: the same bytes as `encode_clips`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import zarr

from audioprobe.audio.io import AudioError, read_audio
from audioprobe.audio.resample import resample
from audioprobe.parallel.dist import Dist, fault_point
from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import DataError


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


def _layout(waves: list[np.ndarray], encoder: Encoder, batch_size: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Return (frames per clip, start row per clip, batches of clip indices) for these waves."""
    frames = np.array([encoder.num_frames(w.shape[0]) for w in waves], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64)
    order = np.argsort([w.shape[0] for w in waves], kind="stable")  # similar lengths share a batch
    return frames, starts, [order[b:b + batch_size] for b in range(0, len(order), batch_size)]


def _open_store(out: Path, total: int, dim: int):
    group = zarr.open_group(str(out / "features.zarr"), mode="w", zarr_format=3)
    return group.create_array("x", shape=(total, dim), chunks=(min(max(total, 1), 16384), dim), dtype="float32")


def _finish_store(out: Path, clips: list[str], waves: list[np.ndarray], frames: np.ndarray, starts: np.ndarray,
                  encoder: Encoder, max_seconds: float, meta: dict) -> dict:
    """Write index.parquet + encoder.json next to the filled features.zarr; return the summary."""
    pl.DataFrame({
        "clip": clips, "start": starts, "frames": frames,
        "seconds": [round(w.shape[0] / encoder.sample_rate, 4) for w in waves],
    }).write_parquet(out / "index.parquet")
    summary = {
        "encoder": encoder.name, "dim": encoder.dim, "sample_rate": encoder.sample_rate,
        "frame_rate": encoder.frame_rate, "clips": len(clips), "frames": int(frames.sum()),
        "max_seconds": max_seconds, "provenance": encoder.provenance, **meta,
    }
    (out / "encoder.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def encode_clips(root: Path, clips: list[str], encoder: Encoder, max_seconds: float, batch_size: int,
                 out: Path, meta: dict) -> dict:
    """Write features.zarr + index.parquet + encoder.json for `clips` into `out`; return the summary."""
    waves = load_waves(root, clips, encoder.sample_rate, max_seconds)
    frames, starts, batches = _layout(waves, encoder, batch_size)
    x = _open_store(out, int(frames.sum()), encoder.dim)
    nan = 0
    for idx in batches:
        for i, feats in zip(idx, encoder.encode_batch([waves[i] for i in idx])):
            nan += int(np.isnan(feats).sum())
            x[int(starts[i]): int(starts[i] + frames[i])] = feats
    if nan:
        raise DataError(f"{encoder.name}: {nan} NaN feature values; check the encoder weights")
    return _finish_store(out, clips, waves, frames, starts, encoder, max_seconds, meta)


def shard_dir(partial: Path, rank: int, world: int) -> Path:
    """Return rank's partial folder under `partial` (one per encoder, outside the DVC outputs)."""
    return Path(partial) / f"shard-{rank}-of-{world}"


def _shard_key(clips: list[str], encoder: Encoder, max_seconds: float, batch_size: int) -> dict:
    # Everything that decides a batch's features: a partial folder written under another key is stale.
    return {"clips": hashlib.sha256("\n".join(clips).encode()).hexdigest(), "encoder": encoder.name,
            "dim": encoder.dim, "provenance": {k: str(v) for k, v in encoder.provenance.items()},
            "max_seconds": max_seconds, "batch_size": batch_size}


def encode_shard(root: Path, clips: list[str], encoder: Encoder, max_seconds: float, batch_size: int,
                 partial: Path, d: Dist) -> tuple[int, list[np.ndarray]]:
    """Encode this rank's batches (r, r + N, ...) into its partial folder; return (NaN count, waves).

    Each batch is one file, batch-<b>.npy [frames of its clips in batch order, dim], written
    atomically; a folder holding the same key (clips, encoder, max_seconds, batch_size) is
    resumed, any other is started afresh. Every rank reads every clip (the length order
    needs them all); only its own batches are encoded.
    """
    waves = load_waves(root, clips, encoder.sample_rate, max_seconds)
    frames, _, batches = _layout(waves, encoder, batch_size)
    folder = shard_dir(partial, d.rank, d.world)
    key = _shard_key(clips, encoder, max_seconds, batch_size)
    if folder.is_dir() and (not (folder / "key.json").is_file()
                            or json.loads((folder / "key.json").read_text()) != key):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(json.dumps(key, sort_keys=True))
    nan = 0
    for b in range(d.rank, len(batches), d.world):
        path = folder / f"batch-{b:06d}.npy"
        if path.is_file():  # resumed: written whole by an earlier run
            nan += int(np.isnan(np.load(path)).sum())
            continue
        idx = batches[b]
        feats = encoder.encode_batch([waves[i] for i in idx])
        block = np.concatenate([np.asarray(f, dtype=np.float32) for f in feats], axis=0)  # (sum frames, dim)
        if block.shape[0] != int(frames[idx].sum()):
            raise DataError(f"{encoder.name}: batch {b} gave {block.shape[0]} frames, expected {int(frames[idx].sum())}")
        nan += int(np.isnan(block).sum())
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, block)
        os.replace(tmp, path)
        fault_point(d, "reason.encode.batch")
    return nan, waves


def merge_shards(clips: list[str], waves: list[np.ndarray], encoder: Encoder, max_seconds: float, batch_size: int,
                 partial: Path, world: int, out: Path, meta: dict) -> dict:
    """Write the store `encode_clips` writes from the N ranks' partial folders; return the summary.

    `waves`: the clips as encode_shard loaded them (their lengths lay out the store).
    """
    frames, starts, batches = _layout(waves, encoder, batch_size)
    x = _open_store(out, int(frames.sum()), encoder.dim)
    for b, idx in enumerate(batches):
        block = np.load(shard_dir(partial, b % world, world) / f"batch-{b:06d}.npy")
        parts = np.split(block, np.cumsum(frames[idx])[:-1], axis=0)  # one (frames_i, dim) per clip
        for i, feats in zip(idx, parts):
            x[int(starts[i]): int(starts[i] + frames[i])] = feats
    return _finish_store(out, clips, waves, frames, starts, encoder, max_seconds, meta)


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
