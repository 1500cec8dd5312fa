"""Encode LibriSpeech utterances into one zarr store of frames, with per-frame energy.

Layout (zarr v3 group): `x` [N, D] float32 (every utterance's frames, concatenated
in index order), `energy` [N] (RMS of the waveform over each frame's samples),
`timestamps` [N] (frame start, seconds), `utt_offsets` [U + 1] int64 (utterance u
owns rows offsets[u]:offsets[u + 1]). Utterances are processed in blocks that are
contiguous in index order, so each block is one append; inside a block they are
sorted by length and batched, so padding costs little.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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


def _blocks(items: list[Item], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(range(start, min(start + size, len(items))))


def extract_latents(
    root: Path,
    items: list[Item],
    encoder: Encoder,
    out: Path,
    batch_size: int = 8,
    load_workers: int = 2,
    progress: bool = True,
    attrs: dict | None = None,
) -> dict:
    """Encode `items` into the zarr group `out` and return its summary.

    Group attrs: dim, frame_rate, sample_rate, hop, encoder, provenance, n_utterances,
    and anything in `attrs`.

    Summary: offsets [U + 1], n_frames per utterance, n_frames total, x mean/std over
    all values, nan_count. Audio is read and resampled to the encoder's rate by
    `load_workers` threads one block ahead of the encoder.
    """
    sr, hop, dim = encoder.sample_rate, encoder.hop, encoder.dim

    def load(i: int) -> np.ndarray:
        wave, wave_sr = read_audio(root / items[i].utt.relpath)
        return resample(wave, wave_sr, sr)

    group = zarr.open_group(str(out), mode="w", zarr_format=3)
    rows = int(min(65536, max(256, 2 ** math.floor(math.log2(_CHUNK_BYTES / (4 * dim))))))
    x_arr = group.create_array("x", shape=(0, dim), chunks=(rows, dim), dtype="float32")
    energy_arr = group.create_array("energy", shape=(0,), chunks=(1 << 16,), dtype="float32")
    time_arr = group.create_array("timestamps", shape=(0,), chunks=(1 << 16,), dtype="float32")

    n_frames = np.zeros(len(items), dtype=np.int64)
    total, sum1, sum2, nan_count = 0, 0.0, 0.0, 0
    nan_utts: list[str] = []
    blocks = list(_blocks(items, max(1, batch_size) * 16))
    bar = tqdm(total=round(sum(it.duration_sec for it in items), 1), unit="s", unit_scale=True,
               desc=f"encoding ({encoder.name})", disable=not progress)
    with ThreadPoolExecutor(max(1, load_workers)) as pool:
        pending: list[Future] = [pool.submit(load, i) for i in blocks[0]] if blocks else []
        for b, block in enumerate(blocks):
            waves = [f.result() for f in pending]
            # Load the next block while this one is encoded.
            pending = [pool.submit(load, i) for i in blocks[b + 1]] if b + 1 < len(blocks) else []
            order = sorted(range(len(block)), key=lambda j: -waves[j].shape[0])
            lat: list[np.ndarray | None] = [None] * len(block)
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                for j, z in zip(idx, encoder.encode_batch([waves[j] for j in idx])):
                    lat[j] = z
                bar.update(round(sum(items[block[j]].duration_sec for j in idx), 1))
            xs, es, ts = [], [], []
            for j, z in enumerate(lat):
                assert z is not None
                bad = int(np.isnan(z).sum())
                if bad:
                    nan_count += bad
                    nan_utts.append(items[block[j]].utt.utt_id)
                n_frames[block[j]] = z.shape[0]
                xs.append(z)
                es.append(frame_energy(waves[j], hop, z.shape[0]))
                ts.append((np.arange(z.shape[0]) * (hop / sr)).astype(np.float32))
            x_block = np.concatenate(xs)  # (frames in block, D)
            x_arr.append(x_block, axis=0)
            energy_arr.append(np.concatenate(es), axis=0)
            time_arr.append(np.concatenate(ts), axis=0)
            finite = x_block[np.isfinite(x_block)].astype(np.float64)
            total += finite.size
            sum1 += float(finite.sum())
            sum2 += float(np.square(finite).sum())
    bar.close()
    if nan_count:
        shown = ", ".join(nan_utts[:5]) + (" ..." if len(nan_utts) > 5 else "")
        raise DataError(f"{encoder.name} encoder produced {nan_count} NaN values in {len(nan_utts)} utterance(s): {shown}")
    offsets = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int64)
    group.create_array("utt_offsets", shape=offsets.shape, chunks=offsets.shape or (1,), dtype="int64")[:] = offsets
    group.attrs.update({
        "dim": dim, "frame_rate": encoder.frame_rate, "sample_rate": sr, "hop": hop,
        "encoder": encoder.name, "provenance": dict(encoder.provenance),
        "n_utterances": len(items), **(attrs or {}),
    })
    mean = sum1 / max(total, 1)
    std = math.sqrt(max(sum2 / max(total, 1) - mean * mean, 0.0))
    return {"offsets": offsets, "n_frames": n_frames, "n_frames_total": int(offsets[-1]),
            "x_mean": mean, "x_std": std, "nan_count": nan_count}


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
