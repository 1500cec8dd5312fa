"""The arms of the comparison: an encoder, `blind`, `shuffled_<encoder>`, and the clip inputs each feeds the mapper.

Training (`reason_train`) and evaluation (`reason_eval`) both build an arm's inputs here, so
the shuffled-audio derangement and the blind prefix are the same in both.
"""

from __future__ import annotations

import numpy as np
import torch

from audioprobe.data.reasonaqa import row_clips, split_clips
from audioprobe.runtime.errors import DataError

BLIND = "blind"
SHUFFLED = "shuffled_"
BLIND_DIM = 1  # the blind arm maps one zero frame per clip: a learned constant prefix
SPLIT_SEED = {"train": 0, "val": 1, "test": 2}  # added to the seed of a split's derangement


def arm_encoder(arm: str) -> str | None:
    """Return the encoder whose features an arm reads (None for blind)."""
    return None if arm == BLIND else arm.removeprefix(SHUFFLED)


def derangement(items: list[str], seed: int) -> dict[str, str]:
    """Return a seeded map item -> a different item (no fixed points; needs >= 2 items).

    A random cyclic shift of a random permutation: every item moves, and the map is a
    bijection, so every clip's audio is still used exactly once.
    """
    if len(items) < 2:
        raise DataError(f"the shuffled-audio control needs >= 2 distinct clips in a split, got {len(items)}")
    rng = np.random.default_rng(seed)
    order = [items[i] for i in rng.permutation(len(items))]
    shift = int(rng.integers(1, len(items)))
    return {order[k]: order[(k + shift) % len(order)] for k in range(len(order))}


def arm_clips(arm: str, rows: list[dict], feats: dict[str, np.ndarray] | None, seed: int,
              split: str) -> list[list[torch.Tensor]]:
    """Return per row the list of clip frames [F_k, enc_dim] this arm feeds the mapper.

    encoder arm: the row's own clips; `blind`: one zero frame per clip (same prefix
    shape budget, no audio information); `shuffled_<enc>`: every clip replaced by another
    clip of the same split (a seeded derangement, fixed for training and evaluation).
    """
    if arm == BLIND:
        return [[torch.zeros(1, BLIND_DIM) for _ in row_clips(r)] for r in rows]
    assert feats is not None
    swap = derangement(split_clips(rows), seed + SPLIT_SEED[split]) if arm.startswith(SHUFFLED) else None
    return [[torch.from_numpy(feats[swap[c] if swap else c]) for c in row_clips(r)] for r in rows]


def input_stats(inputs: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return per-dimension (mean, std) over every frame of these inputs (train split only)."""
    x = torch.cat([c for item in inputs for c in item], dim=0).double()  # (frames, dim)
    return x.mean(0).float(), x.std(0, unbiased=False).float()
