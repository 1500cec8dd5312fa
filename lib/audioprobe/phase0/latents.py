"""Encode LibriSpeech utterances into one zarr store of frames, with per-frame energy.

Layout (zarr v3 group): `x` [N, D] float32 (every utterance's frames, concatenated
in index order), `energy` [N] (RMS of the waveform over each frame's samples),
`timestamps` [N] (frame start, seconds), `utt_offsets` [U + 1] int64 (utterance u
owns rows offsets[u]:offsets[u + 1]), `n_frames` [U] int64. Utterances are
processed in blocks that are contiguous in index order, so each block is one
append; inside a block they are sorted by length and batched, so padding costs
little. Each finished block is recorded, so an interrupted run resumes there.
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf
import zarr
from tqdm import tqdm

from audioprobe.audio.io import read_audio
from audioprobe.audio.resample import resample
from audioprobe.data.librispeech import Utterance, list_utterances
from audioprobe.encoders.interface import Encoder
from audioprobe.errors import DataError

# ~2 MiB chunks of x: large enough for fast reads, small enough for partial rewrites.
_CHUNK_BYTES = 1 << 21


@dataclass(frozen=True)
class Item:
    """One utterance to encode: its LibriSpeech record and its duration (from the header)."""

    utt: Utterance
    duration_sec: float


def select_utterances(
    root: Path, subset: str | list[str], min_seconds: float, workers: int = 2
) -> tuple[list[Item], int]:
    """Return (utterances of `subset` lasting >= min_seconds in id order, number dropped as short)."""
    utts = list_utterances(root, subset)

    def duration(u: Utterance) -> float:
        try:
            info = sf.info(str(root / u.relpath))
        except Exception as exc:
            raise DataError(f"{root / u.relpath}: not a readable audio file ({exc})") from None
        return info.frames / info.samplerate

    with ThreadPoolExecutor(max(1, workers)) as pool:
        durations = list(pool.map(duration, utts))
    items = [Item(u, d) for u, d in zip(utts, durations) if d >= min_seconds]
    if not items:
        raise DataError(
            f"{root}: no utterance of {subset!r} lasts >= {min_seconds} s "
            f"({len(utts)} found); lower phase0.latents.min_seconds"
        )
    return items, len(utts) - len(items)


def frame_energy(wave: np.ndarray, hop: int, n_frames: int) -> np.ndarray:
    """Return float32 [n_frames]: RMS of wave over each frame's samples [f·hop, (f+1)·hop).

    A last, partial frame is averaged over its real samples only.
    """
    n = wave.shape[0]
    padded = np.zeros(n_frames * hop, dtype=np.float64)
    m = min(n, n_frames * hop)
    padded[:m] = wave[:m]
    sq = np.square(padded).reshape(n_frames, hop).sum(axis=1)  # (F,)
    counts = np.clip(n - np.arange(n_frames) * hop, 1, hop)  # real samples per frame
    return np.sqrt(sq / counts).astype(np.float32)


def _blocks(items: list[Item], size: int) -> list[list[int]]:
    return [list(range(s, min(s + size, len(items)))) for s in range(0, len(items), size)]


def resume_key(items: list[Item], encoder: Encoder, batch_size: int, block_size: int) -> str:
    """Return a hash of everything a partial store's content depends on.

    A partial store is resumed only when this matches: the utterances, the encoder
    (provenance, rates, device, batch and block size) and the code that computes them.
    """
    import audioprobe.audio as audio_pkg
    import audioprobe.encoders as enc_pkg

    h = hashlib.sha256()
    h.update(json.dumps({
        "utts": [[it.utt.utt_id, it.utt.relpath, it.duration_sec] for it in items],
        "provenance": encoder.provenance, "sr": encoder.sample_rate, "hop": encoder.hop,
        "dim": encoder.dim, "device": str(encoder.device), "batch_size": batch_size,
        "block_size": block_size,
    }, sort_keys=True).encode())
    code = [Path(__file__)]
    for pkg in (audio_pkg, enc_pkg):
        code += sorted(Path(pkg.__file__).parent.glob("*.py"))
    for f in code:
        h.update(f.read_bytes())
    return h.hexdigest()


def _open_store(out: Path, key: str, dim: int, resume: bool) -> tuple[zarr.Group, dict]:
    """Return (group, progress): a matching partial store to continue, else a new one."""
    if resume and out.is_dir():
        try:
            group = zarr.open_group(str(out), mode="r+")
            progress = dict(group.attrs.get("partial", {}))
        except Exception:  # unreadable leftovers: start over
            progress = {}
        if progress.get("key") == key:
            # An append may have landed after the last recorded block: cut it off.
            group["x"].resize((progress["rows"], dim))
            group["energy"].resize((progress["rows"],))
            group["timestamps"].resize((progress["rows"],))
            group["n_frames"].resize((progress["utts"],))
            return group, progress
    group = zarr.open_group(str(out), mode="w", zarr_format=3)
    rows = int(min(65536, max(256, 2 ** math.floor(math.log2(_CHUNK_BYTES / (4 * dim))))))
    group.create_array("x", shape=(0, dim), chunks=(rows, dim), dtype="float32")
    group.create_array("energy", shape=(0,), chunks=(1 << 16,), dtype="float32")
    group.create_array("timestamps", shape=(0,), chunks=(1 << 16,), dtype="float32")
    group.create_array("n_frames", shape=(0,), chunks=(1 << 16,), dtype="int64")
    progress = {"key": key, "blocks": 0, "rows": 0, "utts": 0, "count": 0, "sum": 0.0, "sumsq": 0.0}
    group.attrs["partial"] = progress
    return group, progress


def extract_latents(
    root: Path,
    items: list[Item],
    encoder: Encoder,
    out: Path,
    batch_size: int = 8,
    load_workers: int = 2,
    progress: bool = True,
    attrs: dict | None = None,
    resume: bool = False,
    block_size: int | None = None,
) -> dict:
    """Encode `items` into the zarr group `out` and return its summary.

    Group attrs: dim, frame_rate, sample_rate, hop, encoder, provenance, n_utterances,
    and anything in `attrs`. Besides x / energy / timestamps / utt_offsets the store
    keeps `n_frames` [U]. Audio is read and resampled to the encoder's rate by
    `load_workers` threads one block (default 16 batches) ahead of the encoder.
    With `resume`, a partial
    store left at `out` by an interrupted run with the same resume_key() continues
    after its last complete block. Raises DataError on the first block with a NaN.

    Summary: offsets [U + 1], n_frames [U], n_frames_total, x_mean / x_std over all
    values, nan_count (0), resumed_utterances.
    """
    sr, hop, dim = encoder.sample_rate, encoder.hop, encoder.dim

    def load(i: int) -> np.ndarray:
        wave, wave_sr = read_audio(root / items[i].utt.relpath)
        return resample(wave, wave_sr, sr)

    block_size = block_size or max(1, batch_size) * 16
    group, state = _open_store(out, resume_key(items, encoder, batch_size, block_size), dim, resume)
    resumed = state["utts"]
    blocks = _blocks(items, block_size)
    todo = blocks[state["blocks"]:]
    bar = tqdm(total=round(sum(it.duration_sec for it in items), 1), unit="s", unit_scale=True,
               desc=f"encoding ({encoder.name})", disable=not progress,
               initial=round(sum(it.duration_sec for it in items[:resumed]), 1))
    with ThreadPoolExecutor(max(1, load_workers)) as pool:
        pending: list[Future] = [pool.submit(load, i) for i in todo[0]] if todo else []
        for b, block in enumerate(todo):
            waves = [f.result() for f in pending]
            # Load the next block while this one is encoded.
            pending = [pool.submit(load, i) for i in todo[b + 1]] if b + 1 < len(todo) else []
            order = sorted(range(len(block)), key=lambda j: -waves[j].shape[0])
            lat: list[np.ndarray] = [np.empty(0)] * len(block)
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                for j, z in zip(idx, encoder.encode_batch([waves[j] for j in idx])):
                    lat[j] = z
                bar.update(round(sum(items[block[j]].duration_sec for j in idx), 1))
            nan_utts = [items[block[j]].utt.utt_id for j, z in enumerate(lat) if np.isnan(z).any()]
            if nan_utts:
                n_nan = sum(int(np.isnan(z).sum()) for z in lat)
                shown = ", ".join(nan_utts[:5]) + (" ..." if len(nan_utts) > 5 else "")
                raise DataError(f"{encoder.name} encoder produced {n_nan} NaN values in "
                                f"{len(nan_utts)} utterance(s): {shown}")
            x_block = np.concatenate(lat)  # (frames in block, D)
            group["x"].append(x_block, axis=0)
            group["energy"].append(np.concatenate(
                [frame_energy(w, hop, z.shape[0]) for w, z in zip(waves, lat)]), axis=0)
            group["timestamps"].append(np.concatenate(
                [(np.arange(z.shape[0]) * (hop / sr)).astype(np.float32) for z in lat]), axis=0)
            group["n_frames"].append(np.array([z.shape[0] for z in lat], dtype=np.int64), axis=0)
            x64 = x_block.astype(np.float64)
            state = {**state, "blocks": state["blocks"] + 1, "rows": state["rows"] + x_block.shape[0],
                     "utts": state["utts"] + len(block), "count": state["count"] + x64.size,
                     "sum": state["sum"] + float(x64.sum()), "sumsq": state["sumsq"] + float(np.square(x64).sum())}
            group.attrs["partial"] = state  # this block is complete
    bar.close()
    n_frames = np.asarray(group["n_frames"][:], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int64)
    group.create_array("utt_offsets", shape=offsets.shape, chunks=offsets.shape, dtype="int64")[:] = offsets
    del group.attrs["partial"]
    group.attrs.update({
        "dim": dim, "frame_rate": encoder.frame_rate, "sample_rate": sr, "hop": hop,
        "encoder": encoder.name, "provenance": dict(encoder.provenance),
        "n_utterances": len(items), **(attrs or {}),
    })
    mean = state["sum"] / max(state["count"], 1)
    std = math.sqrt(max(state["sumsq"] / max(state["count"], 1) - mean * mean, 0.0))
    return {"offsets": offsets, "n_frames": n_frames, "n_frames_total": int(offsets[-1]),
            "x_mean": mean, "x_std": std, "nan_count": 0, "resumed_utterances": resumed}


def index_table(items: list[Item], summary: dict) -> pl.DataFrame:
    """Return latents_index rows (same order as utt_offsets): ids, frame counts, offsets, paths."""
    return pl.DataFrame({
        "utterance_id": [it.utt.utt_id for it in items],
        "speaker_id": [it.utt.speaker for it in items],
        "chapter_id": [it.utt.chapter for it in items],
        "subset": [it.utt.subset for it in items],
        "n_frames": summary["n_frames"].astype(np.int64),
        "offset": summary["offsets"][:-1].astype(np.int64),
        "duration_sec": np.array([it.duration_sec for it in items], dtype=np.float64),
        "audio_path": [it.utt.relpath for it in items],  # relative to the dataset root
    })
