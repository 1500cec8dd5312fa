"""reason's clips in the encoder store: every clip of every split, once per encoder, cut to max_seconds.

The store (audioprobe.encoders.store) holds the frames, one item per clip (item_id = the clip's
path in the ReasonAQA layout), and its encoder.json adds `data` (the dataset's provenance) and
`max_seconds` (the origin's 10 s cap, applied before encoding). Sharded under torchrun like
every store: whole blocks per rank, rank 0 merges into the bytes one process writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audioprobe.encoders.interface import Encoder
from audioprobe.encoders.store import EncoderStore, StoreItem, read_resampled, write_store
from audioprobe.parallel.dist import Dist
from audioprobe.runtime.errors import DataError


def clip_items(root: Path, clips: list[str]) -> list[StoreItem]:
    """The clips as store items (duration from each header); DataError listing every unreadable file."""
    items, bad = [], []
    for c in clips:
        try:
            info = sf.info(str(root / c))
        except Exception as exc:  # soundfile raises its own error types for bad headers
            bad.append(f"{root / c}: not a readable audio file ({exc})")
            continue
        items.append(StoreItem(c, c, info.frames / info.samplerate))
    if bad:
        raise DataError(f"{len(bad)} unreadable clip(s): {'; '.join(bad)}")
    return items


def encode_clips(root: Path, clips: list[str], encoder: Encoder, max_seconds: float, batch_size: int, out: Path,
                 data: dict, d: Dist | None = None, progress: bool = True) -> dict | None:
    """Write the store of `clips` through `encoder` into `out`; return its summary (None on ranks > 0)."""
    return write_store(root, clip_items(root, clips), encoder, out,
                       load=lambda it: read_resampled(root, it, encoder.sample_rate, max_seconds),
                       load_key={"max_seconds": max_seconds}, batch_size=batch_size,
                       attrs={"data": data, "max_seconds": max_seconds}, progress=progress, d=d)


def read_features(folder: str | Path, only: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Return ({clip: float32 [frames, dim]}, encoder.json) of one encoder's store; with `only`, just
    those clips (the others are never read), DataError if the store lacks one."""
    if not (Path(folder) / "index.parquet").is_file():
        raise DataError(f"{folder}: no encoded features; run `dvc repro reason_encode` first")
    store = EncoderStore(folder)
    if only is None:
        return store.by_id(), store.meta
    pos = {item: i for i, item in enumerate(store.index["item_id"].to_list())}
    missing = [c for c in only if c not in pos]
    if missing:
        raise DataError(f"{folder}: {len(missing)} clip(s) not encoded, e.g. {missing[0]}; rerun reason_encode")
    return {c: store.frames(pos[c]) for c in only}, store.meta
