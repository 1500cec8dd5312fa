"""Log-mel features of every Speech Commands clip, cached once for every kws training run.

Cache layout (one folder): `features.npy` float32 [N, frames, n_mels] (written through a
memmap, so the real 105k-clip corpus never sits in memory at once), `labels.npy` int16
(index into `meta.json: words`), `split.npy` int8 (index into SPLITS), `clips.json`
(relpath and speaker per row, in list_clips order = sorted by relpath), `noise.npy`
float32 [K, frames, n_mels] (log-mel of consecutive 1 s segments of the corpus'
`_background_noise_` files, for training-time noise augmentation; K = 0 when the corpus
has none) and `meta.json`. Plain .npy / JSON only: readable without this package and
never unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from audioprobe.audio.io import read_audio
from audioprobe.data.speech_commands import BACKGROUND, SAMPLE_RATE, WORDS, Clip, load_clip
from audioprobe.runtime.errors import DataError

if TYPE_CHECKING:
    import torch

# torch and the mel code are imported where features are computed or turned into tensors:
# kws_train's parent process only opens the cache and checks it before starting the runs.
SPLITS = ("train", "validation", "test")
_FILES = ("features.npy", "labels.npy", "split.npy", "clips.json", "noise.npy", "meta.json")


def n_frames(hop: int, samples: int = SAMPLE_RATE) -> int:
    """Frames of a centred STFT over `samples`: 1 + samples // hop (101 for 1 s, hop 160)."""
    return 1 + samples // hop


def noise_segments(root: Path, *, n_mels: int, n_fft: int, hop: int) -> np.ndarray:
    """Log-mel of every whole 1 s segment of root/_background_noise_/*.wav, files in name
    order: float32 [K, frames, n_mels] (K = 0 without the folder)."""
    import torch

    from audioprobe.audio.mel import log_mel

    frames = n_frames(hop)
    segs = []
    for f in sorted((root / BACKGROUND).glob("*.wav")) if (root / BACKGROUND).is_dir() else []:
        wave, _ = read_audio(f, expected_sr=SAMPLE_RATE)
        n = wave.size // SAMPLE_RATE
        if n:
            segs.append(torch.from_numpy(np.ascontiguousarray(wave[: n * SAMPLE_RATE])).view(n, SAMPLE_RATE))
    if not segs:
        return np.zeros((0, frames, n_mels), np.float32)
    mel = log_mel(torch.cat(segs), SAMPLE_RATE, n_mels=n_mels, n_fft=n_fft, hop=hop)  # (K, frames, n_mels)
    return mel.numpy().astype(np.float32)


def write_feature_cache(
    root: Path,
    clips: Sequence[Clip],
    out_dir: Path,
    *,
    n_mels: int,
    n_fft: int,
    hop: int,
    batch_size: int = 256,
    workers: int = 4,
    progress: bool = True,
    data: dict | None = None,
) -> dict:
    """Compute log-mel features of `clips` (read from `root`) into `out_dir`; return meta.

    `data` (source and sha256 of the corpus) is stored in meta.json as its provenance.

    Classes are the official words present in `clips`, in WORDS order, so a corpus with
    fewer words (the embedded default's `words` param) gets a smaller classifier head.
    """
    import torch

    from audioprobe.audio.mel import log_mel

    if not clips:
        raise DataError(f"{root}: no clips to featurise")
    words = [w for w in WORDS if w in {c.word for c in clips}]
    word_id = {w: i for i, w in enumerate(words)}
    frames = n_frames(hop)
    feats = np.lib.format.open_memmap(
        out_dir / "features.npy", mode="w+", dtype=np.float32, shape=(len(clips), frames, n_mels)
    )
    # soundfile releases the GIL while decoding, so a few threads hide file latency.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        starts = range(0, len(clips), batch_size)
        for start in tqdm(starts, desc="kws_features", unit="batch", disable=not progress):
            batch = clips[start : start + batch_size]
            waves = np.stack(list(pool.map(lambda c: load_clip(root, c.relpath), batch)))  # (B, S)
            mel = log_mel(torch.from_numpy(waves), SAMPLE_RATE, n_mels=n_mels, n_fft=n_fft, hop=hop)
            feats[start : start + len(batch)] = mel.numpy()  # (B, frames, n_mels)
    feats.flush()
    del feats
    noise = noise_segments(root, n_mels=n_mels, n_fft=n_fft, hop=hop)
    np.save(out_dir / "noise.npy", noise)
    np.save(out_dir / "labels.npy", np.array([word_id[c.word] for c in clips], dtype=np.int16))
    np.save(out_dir / "split.npy", np.array([SPLITS.index(c.split) for c in clips], dtype=np.int8))
    (out_dir / "clips.json").write_text(
        json.dumps({"relpath": [c.relpath for c in clips], "speaker": [c.speaker for c in clips]}) + "\n"
    )
    meta = {
        "words": words,
        "n_clips": len(clips),
        "split_counts": {s: sum(c.split == s for c in clips) for s in SPLITS},
        "sample_rate": SAMPLE_RATE,
        "n_mels": n_mels,
        "n_fft": n_fft,
        "hop": hop,
        "frames": frames,
        "noise_segments": int(noise.shape[0]),
        **({"data": data} if data is not None else {}),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


@dataclass(frozen=True)
class FeatureCache:
    """A loaded cache; `features` is a read-only memmap [N, frames, n_mels]."""

    features: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    relpaths: list[str]
    meta: dict
    path: Path

    def noise(self) -> np.ndarray:
        """Background-noise log-mel segments [K, frames, n_mels] (K may be 0)."""
        return np.load(self.path / "noise.npy", allow_pickle=False)

    @property
    def words(self) -> list[str]:
        return list(self.meta["words"])

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split, ascending (= sorted by relpath)."""
        return np.flatnonzero(self.split == SPLITS.index(split))

    def held_out(self, limit: int) -> np.ndarray:
        """Row indices of the first `limit` test clips ordered by (file name, relpath).

        File names start with the speaker hash, so this fixed set mixes words and speakers;
        ordering by relpath (word folder first) would fill it from the first few words.
        """
        idx = self.indices("test")
        order = sorted(idx, key=lambda i: (self.relpaths[i].rsplit("/", 1)[-1], self.relpaths[i]))
        return np.asarray(order[:limit], dtype=np.int64)

    def tensors(self, split: str | np.ndarray, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (features [n, frames, n_mels] float32, labels [n] int64) in memory, of one
        split (ascending rows) or of the given row indices."""
        import torch

        idx = (self.indices(split) if isinstance(split, str) else np.asarray(split))[:limit]
        x = torch.from_numpy(np.ascontiguousarray(self.features[idx]))  # (n, frames, n_mels)
        y = torch.from_numpy(self.labels[idx].astype(np.int64))
        return x, y


def load_feature_cache(cache_dir: str | Path) -> FeatureCache:
    """Open a cache written by write_feature_cache; raise DataError when files are missing."""
    cache_dir = Path(cache_dir)
    missing = [f for f in _FILES if not (cache_dir / f).is_file()]
    if missing:
        raise DataError(f"{cache_dir}: missing {', '.join(missing)}; run `dvc repro kws_features` first")
    meta = json.loads((cache_dir / "meta.json").read_text())
    clips = json.loads((cache_dir / "clips.json").read_text())
    return FeatureCache(
        features=np.load(cache_dir / "features.npy", mmap_mode="r", allow_pickle=False),
        labels=np.load(cache_dir / "labels.npy", allow_pickle=False),
        split=np.load(cache_dir / "split.npy", allow_pickle=False),
        relpaths=list(clips["relpath"]),
        meta=meta,
        path=cache_dir,
    )
