"""Encode LibriSpeech utterances into one zarr store of frames, with per-frame energy.

Layout (zarr v3 group): `x` [N, D] float32 (every utterance's frames, concatenated
in index order), `energy` [N] (RMS of the waveform over each frame's samples),
`timestamps` [N] (frame start, seconds), `utt_offsets` [U + 1] int64 (utterance u
owns rows offsets[u]:offsets[u + 1]), `n_frames` [U] int64. Utterances are
processed in blocks that are contiguous in index order, so each block is one
append; inside a block they are sorted by length and batched, so padding costs
little. Each finished block is recorded, so an interrupted run resumes there.

Sharded (under torchrun, `write_latents` with a Dist of world N): the blocks are shared
out as N contiguous runs of whole blocks, each rank writes its own resumable partial
store, and rank 0 concatenates them into the store and index one process writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf
import zarr
from tqdm import tqdm

from audioprobe.runtime.atomic import atomic_dir, atomic_file, write_json
from audioprobe.audio.io import read_audio
from audioprobe.audio.resample import resample
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.librispeech import Utterance, list_utterances
from audioprobe.parallel import dist
from audioprobe.parallel.dist import Dist, fault_point
from audioprobe.encoders import build_encoder
from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import DataError

STORE = "latents.zarr"  # the outputs of write_latents, inside its out_dir
INDEX = "latents_index.parquet"
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


def _blocks(n_items: int, size: int) -> list[list[int]]:
    return [list(range(s, min(s + size, n_items))) for s in range(0, n_items, size)]


def shard_blocks(n_blocks: int, rank: int, world: int) -> range:
    """Return the block indices rank `rank` of `world` encodes: a contiguous run of whole blocks.

    Whole blocks (not items) are shared out so every block is batched exactly as one
    process batches it: the merged latents then equal one process's, not just approximately.
    Runs are contiguous so rank 0 merges by concatenation in rank order.
    """
    return range(rank * n_blocks // world, (rank + 1) * n_blocks // world)


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
    # sums: per-block [count, sum, sumsq] (float64), folded in block order at the end, so
    # the statistics do not depend on how blocks were shared between processes.
    progress = {"key": key, "blocks": 0, "rows": 0, "utts": 0, "sums": []}
    group.attrs["partial"] = progress
    return group, progress


def encode_blocks(
    root: Path,
    items: list[Item],
    blocks: list[list[int]],
    encoder: Encoder,
    out: Path,
    batch_size: int = 8,
    load_workers: int = 2,
    progress: bool = True,
    resume: bool = False,
    block_size: int = 128,
    after_block: Callable[[int], None] | None = None,
) -> tuple[zarr.Group, dict, int]:
    """Encode the items of `blocks` (index lists into items, in order) into the partial store `out`.

    Return (group, progress state, utterances found already encoded). The store's
    `partial` attr records every finished block: with `resume`, a store left by an
    interrupted run with the same resume_key() continues after its last complete block. `after_block(b)` runs after block b is
    recorded (tests inject faults there). Raises DataError on the first block with a NaN.
    """
    sr, hop, dim = encoder.sample_rate, encoder.hop, encoder.dim
    mine = [items[i] for block in blocks for i in block]

    def load(i: int) -> np.ndarray:
        wave, wave_sr = read_audio(root / items[i].utt.relpath)
        return resample(wave, wave_sr, sr)

    group, state = _open_store(out, resume_key(mine, encoder, batch_size, block_size), dim, resume)
    resumed = state["utts"]
    todo = blocks[state["blocks"]:]
    bar = tqdm(total=round(sum(it.duration_sec for it in mine), 1), unit="s", unit_scale=True,
               desc=f"encoding ({encoder.name})", disable=not progress,
               initial=round(sum(it.duration_sec for it in mine[: state["utts"]]), 1))
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
                     "utts": state["utts"] + len(block),
                     "sums": [*state["sums"], [x64.size, float(x64.sum()), float(np.square(x64).sum())]]}
            group.attrs["partial"] = state  # this block is complete
            if after_block is not None:
                after_block(state["blocks"] - 1)
    bar.close()
    return group, state, resumed


def finish_store(group: zarr.Group, items: list[Item], encoder: Encoder, sums: list, resumed: int,
                 attrs: dict | None = None) -> dict:
    """Write utt_offsets and the attrs of a complete store (dropping `partial`); return its summary."""
    n_frames = np.asarray(group["n_frames"][:], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int64)
    group.create_array("utt_offsets", shape=offsets.shape, chunks=offsets.shape, dtype="int64")[:] = offsets
    if "partial" in group.attrs:
        del group.attrs["partial"]
    group.attrs.update({
        "dim": encoder.dim, "frame_rate": encoder.frame_rate, "sample_rate": encoder.sample_rate,
        "hop": encoder.hop, "encoder": encoder.name, "provenance": dict(encoder.provenance),
        "n_utterances": len(items), **(attrs or {}),
    })
    count = total = total_sq = 0.0
    for c, s, sq in sums:  # block order, one fold: the same floats however blocks were shared
        count, total, total_sq = count + c, total + s, total_sq + sq
    mean = total / max(count, 1)
    std = math.sqrt(max(total_sq / max(count, 1) - mean * mean, 0.0))
    return {"offsets": offsets, "n_frames": n_frames, "n_frames_total": int(offsets[-1]),
            "x_mean": mean, "x_std": std, "nan_count": 0, "resumed_utterances": resumed}


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
    block_size = block_size or max(1, batch_size) * 16
    group, state, resumed = encode_blocks(root, items, _blocks(len(items), block_size), encoder, out,
                                          batch_size, load_workers, progress, resume, block_size)
    return finish_store(group, items, encoder, state["sums"], resumed, attrs)


def merge_shards(shards: list[Path], out: Path, items: list[Item], encoder: Encoder,
                 attrs: dict | None = None) -> dict:
    """Concatenate complete shard stores (in rank order) into a new store `out`; return its summary.

    The result holds the arrays, offsets, attrs and statistics one process writes for
    the same items (tests/unit/phase0/test_phase0_latents_sharded.py checks it).
    """
    group, _ = _open_store(out, "merge", encoder.dim, resume=False)
    sums: list = []
    for path in shards:
        shard = zarr.open_group(str(path), mode="r")
        sums += shard.attrs["partial"]["sums"]
        rows = shard["x"].shape[0]
        step = max(1, shard["x"].chunks[0]) * 16
        for s in range(0, rows, step):  # bounded memory: a slice of rows at a time
            group["x"].append(shard["x"][s : s + step], axis=0)
            group["energy"].append(shard["energy"][s : s + step], axis=0)
            group["timestamps"].append(shard["timestamps"][s : s + step], axis=0)
        group["n_frames"].append(shard["n_frames"][:], axis=0)
    if group["n_frames"].shape[0] != len(items):
        raise DataError(f"{out}: merged {group['n_frames'].shape[0]} utterances from {len(shards)} "
                        f"shards, expected {len(items)}")
    return finish_store(group, items, encoder, sums, 0, attrs)


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


def write_latents(
    root: Path,
    items: list[Item],
    encoder: Encoder,
    out_dir: Path,
    batch_size: int = 8,
    load_workers: int = 2,
    attrs: dict | None = None,
    resume: bool = True,
    progress: bool = True,
    block_size: int | None = None,
    d: Dist | None = None,
) -> dict | None:
    """Encode `items` into out_dir/latents.zarr + latents_index.parquet; return the summary (None on ranks > 0).

    One process encodes into the hidden partial store out_dir/.latents.zarr.partial (not
    a DVC output, so it survives a failed run and the next run resumes it). Under
    torchrun (`d.world` = N > 1) rank r encodes the contiguous run of whole blocks
    shard_blocks(.., r, N) into its own out_dir/.latents.zarr.shard-r-of-N.partial
    (each resumable on its own), every rank waits for all shards, and rank 0 merges them
    into the store one process writes (same arrays, byte-identical index). out_dir must
    be on a filesystem every rank sees. Only a complete store is moved into place, then
    every partial store is removed; a failing rank leaves the outputs untouched.
    """
    block_size = block_size or max(1, batch_size) * 16
    blocks = _blocks(len(items), block_size)
    world, rank = (d.world, d.rank) if d is not None else (1, 0)
    if world == 1:
        partial = out_dir / f".{STORE}.partial"
        summary = extract_latents(root, items, encoder, partial, batch_size, load_workers, progress, attrs, resume,
                                  block_size)
    else:
        mine = [blocks[b] for b in shard_blocks(len(blocks), rank, world)]
        _, _, resumed = encode_blocks(
            root, items, mine, encoder, out_dir / f".{STORE}.shard-{rank}-of-{world}.partial", batch_size,
            load_workers, progress and d.is_main, resume, block_size,
            after_block=lambda b: fault_point(d, "latents.block"),
        )
        fault_point(d, "latents.encoded")
        resumed_all = int(d.all_reduce_sum([resumed])[0])  # also waits until every shard is complete
        if not d.is_main:
            return None
        partial = out_dir / f".{STORE}.merge.partial"
        shards = [out_dir / f".{STORE}.shard-{r}-of-{world}.partial" for r in range(world)]
        summary = merge_shards(shards, partial, items, encoder, attrs)
        summary["resumed_utterances"] = resumed_all
    with atomic_file(out_dir / INDEX) as tmp_index:
        index_table(items, summary).write_parquet(tmp_index)
    with atomic_dir(out_dir / STORE) as tmp:
        tmp.rmdir()
        partial.rename(tmp)  # atomic_dir then swaps it in for the old store
    for leftover in out_dir.glob(f".{STORE}.*partial"):  # finished shards, stale stores of other runs
        shutil.rmtree(leftover, ignore_errors=True)
    return summary


def latents_stats(encoder: Encoder, items: list[Item], n_short: int, summary: dict, data: dict,
                  subset: str | list[str], min_seconds: float) -> dict:
    """Return the committed statistics of a latents store (plots/phase0/latents*.json)."""
    return {
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
        "data": {**data, "subset": subset if isinstance(subset, str) else ",".join(subset),
                 "min_seconds": min_seconds},
    }


SHARD_WAIT_S = 7 * 24 * 3600.0  # how long a rank may wait for slower shards


def encode_stage(stage: str, cfg, enc_cfg, param: str, raw: Path, out_dir: Path, stats: Path,
                 resume: bool = True, params_file: Path = Path("params.yaml")) -> None:
    """Run one latents stage: encode phase0's utterances with `enc_cfg` into out_dir and write `stats`.

    Shared by `phase0_latents` (phase0.encoder) and `phase0_tier1_latents@<enc>` (phase0.tier1.<enc>):
    `cfg` is phase0.latents (utterances, batching, device), `param` the params key that
    errors about the encoder name. One process, or one rank of a torchrun launch
    (write_latents shards the blocks and rank 0 merges).
    """
    # A dead rank fails its peers at once; the long timeout only lets ranks wait for slower shards.
    with dist.session(cfg.device, "phase0.latents.device", timeout_s=SHARD_WAIT_S) as d:
        # Weights first: a missing checkpoint should stop the stage before any audio is scanned.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a random init is announced once, below
            encoder = build_encoder(enc_cfg, device=d.device, param=param)
        root = dataset_root(raw, params_file)
        source = read_source(raw)
        if encoder.is_random and d.is_main:
            print(f"WARNING: encoder {encoder.provenance['name']} has RANDOM weights ({param}.weights: "
                  "random-init); every metric and table records weights=random-init", file=sys.stderr)
        items, n_short = select_utterances(root, cfg.subset, cfg.min_seconds, cfg.load_workers)
        procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
        dist.main_print(d, f"{stage}: {len(items)} utterances (dropped {n_short} < {cfg.min_seconds} s) -> "
                           f"{encoder.name} {encoder.dim}-d at {encoder.frame_rate:g} Hz on {d.device}{procs}")
        data_prov = {"source": str(source["source"]), "sha256": str(source["sha256"])}
        summary = write_latents(root, items, encoder, out_dir, cfg.batch_size, cfg.load_workers,
                                attrs={"data": data_prov}, resume=resume, d=d)
        if summary is None:  # ranks > 0: rank 0 merged and writes the rest
            return
        if summary["resumed_utterances"]:
            print(f"{stage}: resumed after {summary['resumed_utterances']} utterances already encoded")
        write_json(stats, latents_stats(encoder, items, n_short, summary, data_prov, cfg.subset, cfg.min_seconds))
        print(f"{stage}: {summary['n_frames_total']} frames, x mean {summary['x_mean']:.4g} "
              f"std {summary['x_std']:.4g}, 0 NaN -> {out_dir}")
