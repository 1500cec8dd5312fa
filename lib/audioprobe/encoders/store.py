"""The encoder store: every lane that encodes audio writes and reads its frames here, one format.

A store is one folder holding one encoder's frames of a list of audio items:

    frames.zarr    (zarr v3 group) x [N, D] float32: every item's frames back to back, in index
                   order; energy [N] float32: RMS of the waveform over each frame's samples;
                   timestamps [N] float32: frame start in seconds; offsets [U + 1] int64: item u
                   owns rows offsets[u]:offsets[u + 1]
    index.parquet  one row per item, in store order: item_id, audio_path (relative to the dataset
                   root), audio_sha256 (of the file's bytes), n_frames, offset, seconds (of audio
                   encoded), then the lane's own columns (e.g. speaker_id)
    encoder.json   name, dim, hop, sample_rate, frame_rate, provenance (weights and their sha256),
                   key, x_mean, x_std, n_items, n_frames, then the lane's own attributes

It is keyed by encoder + weights (`key` in encoder.json: a sha256 over the encoder's name, rates,
dim and weights provenance) and by audio (`audio_sha256` per item), so a lane can find an item
another lane has already encoded with the same encoder.

Writing (`write_store`): items are cut into blocks of consecutive items; inside a block they are
sorted longest first and encoded in batches (similar lengths share a batch, so padding costs
little), and the block is one append. Each finished block is recorded in a hidden partial store
next to the output, so an interrupted run resumes after its last complete block. Under torchrun
(a Dist of world N), rank r encodes a contiguous run of whole blocks into its own partial store
and rank 0 concatenates them: every block is batched as one process batches it, so the store is
the one a single process writes. Only a complete store replaces the output folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr
from tqdm import tqdm

from audioprobe.audio.io import read_audio
from audioprobe.audio.resample import resample
from audioprobe.encoders.interface import Encoder
from audioprobe.parallel.dist import Dist, fault_point
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.provenance import sha256_file

FRAMES, INDEX, META = "frames.zarr", "index.parquet", "encoder.json"
_CHUNK_BYTES = 1 << 21  # ~2 MiB chunks of x: fast reads, small partial rewrites
_PER_FRAME = ("x", "energy", "timestamps")


@dataclass(frozen=True)
class StoreItem:
    """One audio item to encode: its id, its file relative to the dataset root, its duration."""

    item_id: str
    path: str
    seconds: float  # from the file header: progress and the order blocks are cut in never need the audio


def encoder_key(encoder: Encoder) -> str:
    """The sha256 that names an encoder + weights: equal keys encode the same audio to the same frames."""
    spec = {"name": encoder.name, "dim": encoder.dim, "hop": encoder.hop, "sample_rate": encoder.sample_rate,
            "frame_rate": encoder.frame_rate, "provenance": {k: str(v) for k, v in encoder.provenance.items()}}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


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


def read_resampled(root: Path, item: StoreItem, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """The default loader: the item's audio at `sample_rate`, cut to `max_seconds` when given."""
    wave, sr = read_audio(root / item.path)
    wave = resample(wave, sr, sample_rate)
    return wave if max_seconds is None else wave[: int(round(max_seconds * sample_rate))]


def blocks_of(n_items: int, size: int) -> list[list[int]]:
    """Consecutive items cut into blocks of `size` (the last may be shorter)."""
    return [list(range(s, min(s + size, n_items))) for s in range(0, n_items, size)]


def shard_blocks(n_blocks: int, rank: int, world: int) -> range:
    """The block indices rank `rank` of `world` encodes: a contiguous run of whole blocks.

    Whole blocks (not items) are shared out so every block is batched exactly as one process
    batches it, and runs are contiguous so rank 0 merges by concatenation in rank order.
    """
    return range(rank * n_blocks // world, (rank + 1) * n_blocks // world)


def resume_key(items: list[StoreItem], encoder: Encoder, batch_size: int, block_size: int, load_key: dict) -> str:
    """A hash of everything a partial store's content depends on: items, encoder, batching, the
    loader's settings (`load_key`, e.g. a cut length) and the code that computes frames."""
    import audioprobe.audio as audio_pkg
    import audioprobe.encoders as enc_pkg

    h = hashlib.sha256()
    h.update(json.dumps({
        "items": [[it.item_id, it.path, it.seconds] for it in items], "encoder": encoder_key(encoder),
        "device": str(encoder.device), "batch_size": batch_size, "block_size": block_size, "load": load_key,
    }, sort_keys=True).encode())
    for pkg in (audio_pkg, enc_pkg):
        for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
            h.update(f.read_bytes())
    return h.hexdigest()


def _open_partial(path: Path, key: str, dim: int, resume: bool) -> tuple[zarr.Group, dict]:
    """Return (group, progress): a matching partial store to continue, else a new one."""
    if resume and path.is_dir():
        try:
            group = zarr.open_group(str(path), mode="r+")
            progress = dict(group.attrs.get("partial", {}))
        except Exception:  # unreadable leftovers: start over
            progress = {}
        if progress.get("key") == key:
            # An append may have landed after the last recorded block: cut it off.
            group["x"].resize((progress["rows"], dim))
            for name in ("energy", "timestamps"):
                group[name].resize((progress["rows"],))
            group["n_frames"].resize((progress["items"],))
            return group, progress
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    rows = int(min(65536, max(256, 2 ** math.floor(math.log2(_CHUNK_BYTES / (4 * dim))))))
    group.create_array("x", shape=(0, dim), chunks=(rows, dim), dtype="float32")
    for name in ("energy", "timestamps"):
        group.create_array(name, shape=(0,), chunks=(1 << 16,), dtype="float32")
    group.create_array("n_frames", shape=(0,), chunks=(1 << 16,), dtype="int64")
    # sums: per block [count, sum, sumsq] (float64), folded in block order at the end, so the
    # statistics do not depend on how blocks were shared between processes; sha256: per item.
    progress = {"key": key, "blocks": 0, "rows": 0, "items": 0, "sums": [], "sha256": []}
    group.attrs["partial"] = progress
    return group, progress


def encode_blocks(root: Path, items: list[StoreItem], blocks: list[list[int]], encoder: Encoder, partial: Path,
                  load: Callable[[StoreItem], np.ndarray], load_key: dict, batch_size: int = 8,
                  load_workers: int = 2, progress: bool = True, resume: bool = False, block_size: int = 128,
                  after_block: Callable[[int], None] | None = None) -> tuple[zarr.Group, dict, int]:
    """Encode the items of `blocks` (index lists into items, in order) into the partial store `partial`.

    Return (group, progress state, items found already encoded). With `resume`, a partial store
    of an interrupted run with the same resume_key() continues after its last complete block.
    `after_block(b)` runs after block b is recorded (tests inject faults there). Raises DataError
    on the first block with a NaN.
    """
    sr, hop, dim = encoder.sample_rate, encoder.hop, encoder.dim
    mine = [items[i] for block in blocks for i in block]

    def fetch(i: int) -> tuple[np.ndarray, str]:
        return load(items[i]), sha256_file(root / items[i].path)

    group, state = _open_partial(partial, resume_key(mine, encoder, batch_size, block_size, load_key), dim, resume)
    resumed = state["items"]
    todo = blocks[state["blocks"]:]
    bar = tqdm(total=round(sum(it.seconds for it in mine), 1), unit="s", unit_scale=True,
               desc=f"encoding ({encoder.name})", disable=not progress,
               initial=round(sum(it.seconds for it in mine[: state["items"]]), 1))
    with ThreadPoolExecutor(max(1, load_workers)) as pool:
        pending: list[Future] = [pool.submit(fetch, i) for i in todo[0]] if todo else []
        for b, block in enumerate(todo):
            loaded = [f.result() for f in pending]
            waves = [w for w, _ in loaded]
            # Load the next block while this one is encoded.
            pending = [pool.submit(fetch, i) for i in todo[b + 1]] if b + 1 < len(todo) else []
            order = sorted(range(len(block)), key=lambda j: -waves[j].shape[0])
            frames: list[np.ndarray] = [np.empty(0)] * len(block)
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                for j, z in zip(idx, encoder.encode_batch([waves[j] for j in idx])):
                    frames[j] = z
                bar.update(round(sum(items[block[j]].seconds for j in idx), 1))
            nan_items = [items[block[j]].item_id for j, z in enumerate(frames) if np.isnan(z).any()]
            if nan_items:
                n_nan = sum(int(np.isnan(z).sum()) for z in frames)
                shown = ", ".join(nan_items[:5]) + (" ..." if len(nan_items) > 5 else "")
                raise DataError(f"{encoder.name} encoder produced {n_nan} NaN values in {len(nan_items)} "
                                f"item(s): {shown}; check the encoder's weights")
            x_block = np.concatenate(frames)  # (frames in block, D)
            group["x"].append(x_block, axis=0)
            group["energy"].append(np.concatenate(
                [frame_energy(w, hop, z.shape[0]) for w, z in zip(waves, frames)]), axis=0)
            group["timestamps"].append(np.concatenate(
                [(np.arange(z.shape[0]) * (hop / sr)).astype(np.float32) for z in frames]), axis=0)
            group["n_frames"].append(np.array([z.shape[0] for z in frames], dtype=np.int64), axis=0)
            x64 = x_block.astype(np.float64)
            state = {**state, "blocks": state["blocks"] + 1, "rows": state["rows"] + x_block.shape[0],
                     "items": state["items"] + len(block),
                     "sums": [*state["sums"], [x64.size, float(x64.sum()), float(np.square(x64).sum())]],
                     "sha256": [*state["sha256"], *(h for _, h in loaded)],
                     "seconds": [*state.get("seconds", []), *(round(w.shape[0] / sr, 4) for w in waves)]}
            group.attrs["partial"] = state  # this block is complete
            if after_block is not None:
                after_block(state["blocks"] - 1)
    bar.close()
    return group, state, resumed


def _merge(shards: list[Path], path: Path, dim: int) -> tuple[zarr.Group, dict]:
    """Concatenate complete shard stores (in rank order) into a new partial store `path`."""
    group, state = _open_partial(path, "merge", dim, resume=False)
    for shard_path in shards:
        shard = zarr.open_group(str(shard_path), mode="r")
        done = shard.attrs["partial"]
        for k in ("sums", "sha256", "seconds"):
            state[k] = [*state[k], *done.get(k, [])] if k in state else list(done.get(k, []))
        rows = shard["x"].shape[0]
        step = max(1, shard["x"].chunks[0]) * 16
        for s in range(0, rows, step):  # bounded memory: a slice of rows at a time
            for name in _PER_FRAME:
                group[name].append(shard[name][s : s + step], axis=0)
        group["n_frames"].append(shard["n_frames"][:], axis=0)
    return group, state


def _finish(group: zarr.Group, path: Path, items: list[StoreItem], encoder: Encoder, state: dict,
            columns: dict[str, list] | None, attrs: dict | None) -> dict:
    """Write offsets, index.parquet and encoder.json beside the filled frames; return the summary."""
    n_frames = np.asarray(group["n_frames"][:], dtype=np.int64)
    if n_frames.size != len(items):
        raise DataError(f"{path}: {n_frames.size} items encoded, expected {len(items)}")
    offsets = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int64)
    group.create_array("offsets", shape=offsets.shape, chunks=offsets.shape, dtype="int64")[:] = offsets
    del group.attrs["partial"]
    count = total = total_sq = 0.0
    for c, s, sq in state["sums"]:  # block order, one fold: the same floats however blocks were shared
        count, total, total_sq = count + c, total + s, total_sq + sq
    mean = total / max(count, 1)
    std = math.sqrt(max(total_sq / max(count, 1) - mean * mean, 0.0))
    pl.DataFrame({
        "item_id": [it.item_id for it in items],
        "audio_path": [it.path for it in items],
        "audio_sha256": state["sha256"],
        "n_frames": n_frames,
        "offset": offsets[:-1],
        "seconds": np.asarray(state["seconds"], dtype=np.float64),
        **(columns or {}),
    }).write_parquet(path.parent / INDEX)
    meta = {"name": encoder.name, "dim": encoder.dim, "hop": encoder.hop, "sample_rate": encoder.sample_rate,
            "frame_rate": encoder.frame_rate, "provenance": {k: str(v) for k, v in encoder.provenance.items()},
            "key": encoder_key(encoder), "n_items": len(items), "n_frames": int(offsets[-1]),
            "x_mean": mean, "x_std": std, **(attrs or {})}
    (path.parent / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return {**meta, "offsets": offsets, "n_frames_per_item": n_frames}


def write_store(root: Path, items: list[StoreItem], encoder: Encoder, out: Path, *,
                load: Callable[[StoreItem], np.ndarray] | None = None, load_key: dict | None = None,
                batch_size: int = 8, load_workers: int = 2, columns: dict[str, list] | None = None,
                attrs: dict | None = None, resume: bool = True, progress: bool = True,
                block_size: int | None = None, d: Dist | None = None) -> dict | None:
    """Encode `items` (audio under `root`) into the store folder `out`; return its summary
    (encoder.json's fields plus offsets and per-item frame counts), None on ranks > 0.

    `load(item)` returns the item's wave at the encoder's rate (default: read_resampled); whatever
    it depends on beyond the item goes in `load_key`, so a partial store made with other settings is
    never resumed. `columns`: the lane's per-item index columns (same order as items); `attrs`:
    its encoder.json fields. One process encodes into a hidden partial store beside `out`
    (`.<name>.partial`, not a DVC output, so a failed run's work survives and the next run resumes
    it). Under torchrun (`d.world` = N > 1) rank r encodes shard_blocks(.., r, N) into its own
    `.<name>.shard-r-of-N.partial`, every rank waits for all, and rank 0 merges them into the store
    one process writes. Only a complete store replaces `out`; every partial store is then removed.
    """
    load = load or (lambda it: read_resampled(root, it, encoder.sample_rate))
    load_key = load_key or {}
    block_size = block_size or max(1, batch_size) * 16
    blocks = blocks_of(len(items), block_size)
    world, rank = (d.world, d.rank) if d is not None else (1, 0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.parent / f".{out.name}"
    if world == 1:
        partial = Path(f"{stem}.partial") / FRAMES
        group, state, resumed = encode_blocks(root, items, blocks, encoder, partial, load, load_key, batch_size,
                                              load_workers, progress, resume, block_size)
    else:
        mine = [blocks[b] for b in shard_blocks(len(blocks), rank, world)]
        shard = Path(f"{stem}.shard-{rank}-of-{world}.partial") / FRAMES
        _, _, resumed = encode_blocks(root, items, mine, encoder, shard, load, load_key, batch_size, load_workers,
                                      progress and d.is_main, resume, block_size,
                                      after_block=lambda b: fault_point(d, "store.block"))
        fault_point(d, "store.encoded")
        resumed = int(d.all_reduce_sum([resumed])[0])  # also waits until every shard is complete
        if not d.is_main:
            return None
        partial = Path(f"{stem}.merge.partial") / FRAMES
        shutil.rmtree(partial.parent, ignore_errors=True)
        group, state = _merge([Path(f"{stem}.shard-{r}-of-{world}.partial") / FRAMES for r in range(world)],
                              partial, encoder.dim)
    summary = _finish(group, partial, items, encoder, state, columns, attrs)
    with atomic_dir(out) as tmp:
        tmp.rmdir()
        partial.parent.rename(tmp)  # atomic_dir then swaps it in for the old store
    for leftover in out.parent.glob(f".{out.name}.*partial"):  # finished shards, stale stores of other runs
        shutil.rmtree(leftover, ignore_errors=True)
    return {**summary, "resumed_items": resumed}


def write_arrays(out: Path, x: np.ndarray, offsets: np.ndarray, meta: dict, columns: dict[str, list] | None = None,
                 energy: np.ndarray | None = None) -> None:
    """Write frames computed elsewhere (synthetic latents for tests and benchmarks) as a store of the
    layout write_store makes; `meta` fills encoder.json (name, dim, rates, provenance, ...)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x, dtype=np.float32)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_frames = np.diff(offsets)
    group = zarr.open_group(str(out / FRAMES), mode="w", zarr_format=3)
    group.create_array("x", shape=x.shape, chunks=(min(max(x.shape[0], 1), 65536), x.shape[1]), dtype="float32")[:] = x
    per_frame = {"energy": np.zeros(x.shape[0], np.float32) if energy is None else energy,
                 "timestamps": np.concatenate([np.arange(n, dtype=np.float32) for n in n_frames]) if n_frames.size
                 else np.zeros(0, np.float32)}
    for name, values in {**per_frame, "offsets": offsets, "n_frames": n_frames}.items():
        group.create_array(name, shape=values.shape, chunks=(max(values.shape[0], 1),), dtype=values.dtype)[:] = values
    ids = [f"item{i}" for i in range(n_frames.size)]
    pl.DataFrame({"item_id": ids, "audio_path": ids, "audio_sha256": [""] * len(ids), "n_frames": n_frames,
                  "offset": offsets[:-1], "seconds": np.zeros(len(ids)), **(columns or {})}).write_parquet(out / INDEX)
    (out / META).write_text(json.dumps({"n_items": len(ids), "n_frames": int(offsets[-1]), "dim": int(x.shape[1]),
                                        **meta}, indent=2, sort_keys=True) + "\n")


class EncoderStore:
    """Read one store folder: `x`, `energy`, `timestamps`, `offsets` (numpy, loaded on first use),
    `index` (polars), `meta` (encoder.json), and `frames(i)` for one item's [n_frames, D]."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / META).is_file() or not (self.folder / INDEX).is_file():
            raise DataError(f"{self.folder}: not an encoder store (no {META} / {INDEX}); run the stage that "
                            "encodes it first")
        self.meta: dict[str, Any] = json.loads((self.folder / META).read_text())
        self.index = pl.read_parquet(self.folder / INDEX)
        self._group = zarr.open_group(str(self.folder / FRAMES), mode="r")
        self._cache: dict[str, np.ndarray] = {}
        if int(self.offsets[-1]) != self._group["x"].shape[0] or self.offsets.size != self.index.height + 1:
            raise DataError(f"{self.folder}: offsets, frames and index disagree; rerun the stage that wrote it")

    def _array(self, name: str, dtype) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.asarray(self._group[name][:], dtype=dtype)
        return self._cache[name]

    @property
    def x(self) -> np.ndarray:
        return self._array("x", np.float32)  # (N, D)

    @property
    def energy(self) -> np.ndarray:
        return self._array("energy", np.float32)

    @property
    def timestamps(self) -> np.ndarray:
        return self._array("timestamps", np.float32)

    @property
    def offsets(self) -> np.ndarray:
        return self._array("offsets", np.int64)

    def frames(self, i: int) -> np.ndarray:
        """Item i's frames [n_frames, D] (a view of x)."""
        return self.x[int(self.offsets[i]): int(self.offsets[i + 1])]

    def by_id(self) -> dict[str, np.ndarray]:
        """{item_id: its frames}, in store order."""
        return {item: self.frames(i) for i, item in enumerate(self.index["item_id"].to_list())}
