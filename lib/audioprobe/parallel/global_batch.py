"""This rank's share of a global batch and the loss scaling that makes DDP average over it.

Generic pieces of data-parallel training on top of audioprobe.parallel.dist (one process: every
helper is the identity, no extra RNG draws). The contract, shared by kws.training,
reason.training and detect.llm.finetune:
- every rank draws the same global batch (same seeded generator) and keeps rows
  rank, rank + N, ... of it (`rank_rows`), so N processes train on the batches one sees;
- each rank's loss is its SUM over its rows times N / (the global batch's count of loss
  terms) (`global_mean_loss`): DistributedDataParallel averages the ranks' gradients,
  so the result is the gradient of the mean over the whole global batch, whatever the
  split of rows (or of tokens) between ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn

from audioprobe.parallel.dist import Dist

T = TypeVar("T")


def rank_rows(d: Dist, rows: Sequence[T]) -> list[T]:
    """Return this rank's rows of a global batch: rows[rank::world] (all of them in world 1)."""
    return list(rows[d.rank :: d.world])


def global_mean_loss(d: Dist, loss_sum: torch.Tensor, n_global: int) -> torch.Tensor:
    """Return loss_sum · world / n_global: DDP's average of it over ranks is the global-batch mean."""
    return loss_sum * (d.world / n_global)


def ddp(d: Dist, model: nn.Module, find_unused: bool = False) -> nn.Module:
    """Return model under DistributedDataParallel (world > 1), else model itself.

    `find_unused`: some parameters may get no gradient on a rank's rows (e.g. a separator
    used only by two-clip rows). DDP then still averages them, and a parameter no rank
    used keeps grad None, as in one process (the optimizer skips it alike).
    """
    if not d.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
