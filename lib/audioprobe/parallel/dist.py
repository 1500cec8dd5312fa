"""One process or many under torchrun: who am I (rank, world, device) and the few collectives we use.

A stage calls `init()` (or `with session(...) as d:`) once. Launched by torchrun, the
process reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)
and joins the process group: backend `nccl` when the device is CUDA (one GPU per local
rank), `gloo` on the CPU. Launched plainly, it is world 1 and no process group exists; every
helper below then returns its input unchanged, so single-process code pays nothing and draws
no extra random numbers.

Conventions shared by every data-parallel stage (training or sharded encoding):
- items are split strided, rank r takes items r, r + world, r + 2·world, ... (`shard`), the
  assignment torch's DistributedSampler uses, so shards differ in size by at most one and
  nothing is padded or duplicated;
- only the main rank (rank 0) writes outputs, atomically (audioprobe.runtime.atomic);
- results are gathered as exact counts/sums or per-item values, never averaged averages.

Failures: `session()` writes the exception to torchelastic's per-worker error file so the
launcher (audioprobe.parallel.launch) can print one line naming the rank that failed first; a rank
that fails only because a peer vanished marks its error `secondary`. SIGTERM (torchrun
stopping the survivors) raises SystemExit, so `atomic_dir` removes temp folders on the way out.

Tests only: `AUDIOPROBE_TEST_FAULT=<where>@<rank>` makes `fault_point(d, where)` raise on that
rank (see tests/unit/kws/test_kws_dist.py); nothing else reads it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as tdist
from torch import nn

from audioprobe.parallel.device import pick_device
from audioprobe.parallel.procs import exit_on_sigterm

T = TypeVar("T")

FAULT_ENV = "AUDIOPROBE_TEST_FAULT"
# Messages of the errors a rank sees when a peer process died (gloo / nccl / the TCP store).
_PEER_GONE = ("connection closed by peer", "connection reset by peer", "broken pipe", "socket timeout",
              "connection refused", "nccl communicator was aborted", "dist_backend_error", "recvbytes",
              "timed out", "sigterm")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; world 1 = a plain single process (no process group)."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str | None  # 'nccl' | 'gloo' | None (world 1)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, n: int) -> range:
        """Return the item indices this rank owns out of n: rank, rank + world, ..."""
        return range(self.rank, n, self.world)

    def barrier(self) -> None:
        """Wait for every rank (no-op in world 1)."""
        if self.distributed:
            if self.backend == "nccl":
                tdist.barrier(device_ids=[self.device.index])
            else:
                tdist.barrier()

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Return [obj of rank 0, obj of rank 1, ...] on every rank (picklable objects)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Return rank `src`'s obj on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=src)
        return box[0]

    def all_reduce_sum(self, values: Sequence[float | int] | torch.Tensor) -> torch.Tensor:
        """Return the elementwise sum over ranks as a float64 CPU tensor (exact for counts < 2**53)."""
        t = torch.as_tensor(values, dtype=torch.float64).clone()
        if self.distributed:
            # nccl reduces device tensors only; the few scalars we sum travel either way.
            moved = t.to(self.device)
            tdist.all_reduce(moved, op=tdist.ReduceOp.SUM)
            t = moved.cpu()
        return t

    def wrap(self, model: nn.Module, find_unused: bool = False) -> nn.Module:
        """Return model wrapped in DistributedDataParallel (world > 1), else model itself.

        DDP averages gradients over ranks; the training loop scales each rank's loss so that
        this average is the mean over the global batch (`global_mean_loss`). `find_unused`:
        some parameters may get no gradient on a rank's rows (e.g. a separator used only by
        two-clip rows); DDP then still averages them, and a parameter no rank used keeps grad
        None, as in one process (the optimizer skips it alike).
        """
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def destroy(self) -> None:
        """Leave the process group (no-op in world 1)."""
        if self.distributed and tdist.is_initialized():
            tdist.destroy_process_group()



# ---- a global batch shared between ranks (kws.training, reason.training, detect.llm.finetune)
# Every rank draws the same global batch (same seeded generator) and keeps rows rank,
# rank + N, ... of it (`rank_rows`), so N processes train on the batches one sees. Each rank's
# loss is its SUM over its rows times N / (the global batch's count of loss terms)
# (`global_mean_loss`): DDP averages the ranks' gradients, so the result is the gradient of
# the mean over the whole global batch, whatever the split of rows (or tokens) between ranks.
def rank_rows(d: Dist, rows: Sequence[T]) -> list[T]:
    """Return this rank's rows of a global batch: rows[rank::world] (all of them in world 1)."""
    return list(rows[d.rank :: d.world])


def global_mean_loss(d: Dist, loss_sum: torch.Tensor, n_global: int) -> torch.Tensor:
    """Return loss_sum · world / n_global: DDP's average of it over ranks is the global-batch mean."""
    return loss_sum * (d.world / n_global)


def env_world() -> tuple[int, int, int]:
    """Return (rank, world, local_rank) from torchrun's environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return rank, world, local


def init(device: str = "auto", param: str = "device", timeout_s: float = 600.0) -> Dist:
    """Return this process's Dist; join torchrun's process group when WORLD_SIZE > 1.

    `device` is the params value ('auto' | 'cpu' | 'cuda[:N]', `param` names its key for
    errors). Under torchrun on CUDA each process takes GPU `LOCAL_RANK`; `timeout_s` bounds
    a collective waiting for a rank that hangs (one that dies fails its peers at once).
    """
    rank, world, local = env_world()
    dev = pick_device(device, param)
    if world > 1 and dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(
                f"{param}: local rank {local} has no GPU ({torch.cuda.device_count()} visible);"
                " use --nproc-per-node <= the number of GPUs"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world == 1:
        return Dist(0, 1, 0, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s),
                                 **({"device_id": dev} if backend == "nccl" else {}))
    return Dist(rank, world, local, dev, backend)


def is_peer_failure(exc: BaseException) -> bool:
    """True when `exc` looks like the consequence of another rank dying, not a cause."""
    if isinstance(exc, SystemExit) and exc.code == 128 + signal.SIGTERM:
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, getattr(tdist, "DistError", ())) or any(s in text for s in _PEER_GONE)


def _first_line(exc: BaseException) -> str:
    # gloo prefixes "[/path/to/pair.cc:553] " and appends advice; keep the sentence that says what happened.
    lines = str(exc).strip().splitlines()
    first = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else ""
    return first.split(". This is typically")[0][:300]


def _record_failure(d: Dist, exc: BaseException) -> None:
    # torchelastic's error-file format (ProcessFailure reads message + extraInfo.timestamp);
    # the `audioprobe` entry lets audioprobe.parallel.launch tell the root cause from its echoes.
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    first = _first_line(exc)
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    data = {"message": {"message": message, "extraInfo": {"py_callstack": "", "timestamp": str(int(time.time()))}},
            "audioprobe": {"rank": d.rank, "time": time.time(), "secondary": is_peer_failure(exc),
                           "known": type(exc).__module__.startswith("audioprobe")}}
    with contextlib.suppress(OSError):
        with open(path, "w") as f:
            json.dump(data, f)


@contextlib.contextmanager
def session(device: str = "auto", param: str = "device", timeout_s: float = 600.0) -> Iterator[Dist]:
    """Yield init(...)'s Dist; on exit leave the process group, on error record it for the launcher."""
    d = init(device, param, timeout_s)
    # torchrun stops the surviving ranks with SIGTERM when one fails: as SystemExit, context
    # managers (atomic_dir) clean up their temp folders on the way out.
    previous = exit_on_sigterm() if d.distributed else None
    failed = False
    try:
        yield d
    except BaseException as exc:
        failed = d.distributed
        if failed:
            _record_failure(d, exc)
            if is_peer_failure(exc):
                # An echo of another rank's failure: one line, not a second traceback.
                first = _first_line(exc) or type(exc).__name__
                raise SystemExit(f"rank {d.rank}: stopped because another rank failed ({first})") from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if not failed:  # after a failure the group may be broken: leaving it could block
            d.destroy()


def fault_point(d: Dist, where: str) -> None:
    """Raise on the rank named by $AUDIOPROBE_TEST_FAULT = '<where>@<rank>' (tests only)."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec == f"{where}@{d.rank}":
        raise RuntimeError(f"injected test fault ({FAULT_ENV}={spec})")


class GlobalBatchSampler(torch.utils.data.Sampler):
    """Yield, per training step, the row indices of this rank's share of the global batch.

    Each epoch draws one permutation of the n rows from `generator` (seeded alike on every
    rank, so all ranks agree), cuts it into global batches of `global_batch` rows (the last
    one may be shorter) and yields rows rank, rank + world, ... of each (all of them with
    `whole=True`, for augmentation drawn over the global batch before sharding). World 1
    yields exactly `randperm(n, generator)[start : start + global_batch]`, the order a
    plain loop draws. Unlike torch's DistributedSampler nothing is padded or duplicated,
    and the permutation stream does not depend on the world size, so N processes see the
    global batches one process sees. Use with DataLoader(batch_size=None, sampler=...).
    """

    def __init__(self, n: int, global_batch: int, generator: torch.Generator, d: Dist, *, whole: bool = False):
        if global_batch % d.world:
            raise ValueError(f"global batch {global_batch} is not divisible by {d.world} processes")
        self.n, self.global_batch, self.generator, self.d, self.whole = n, global_batch, generator, d, whole

    def __len__(self) -> int:
        return -(-self.n // self.global_batch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.global_batch):
            idx = order[start : start + self.global_batch]
            yield idx if self.whole or self.d.world == 1 else idx[self.d.rank :: self.d.world]

    def global_size(self, step_in_epoch: int) -> int:
        """Rows in the global batch of the given step (0-based) of an epoch."""
        return min(self.global_batch, self.n - step_in_epoch * self.global_batch)


class ShardedDropout(nn.Dropout):
    """nn.Dropout whose mask is drawn for the whole global batch; this rank keeps its rows.

    With `shard = None` (one process, eval, or p = 0) it is nn.Dropout exactly. With
    `shard = (global_batch, rows)` (rows: a slice of the global batch, normally
    slice(rank, None, world)) every rank draws the (global_batch, ...) mask from the same
    seeded RNG stream and applies its rows, so N processes apply the masks one process
    would, and the RNG streams of all ranks stay in step.
    """

    shard: tuple[int, slice] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shard is None or not self.training or self.p == 0.0:
            return super().forward(x)
        global_batch, rows = self.shard
        # Same ops as ATen's CPU dropout (bernoulli_ then div_), so a full-batch shard gives
        # nn.Dropout's values bit for bit.
        noise = torch.empty((global_batch, *x.shape[1:]), dtype=x.dtype, device=x.device)
        noise.bernoulli_(1.0 - self.p).div_(1.0 - self.p)
        noise = noise[rows]
        if noise.shape[0] != x.shape[0]:
            raise ValueError(f"ShardedDropout: {x.shape[0]} rows but the shard {rows} of a global batch of"
                             f" {global_batch} has {noise.shape[0]}")
        return x * noise


def set_dropout_shard(model: nn.Module, shard: tuple[int, slice] | None) -> None:
    """Point every ShardedDropout in `model` at this step's (global_batch, rows of this rank)."""
    for m in model.modules():
        if isinstance(m, ShardedDropout):
            m.shard = shard


def main_print(d: Dist, *args: Any, **kwargs: Any) -> None:
    """print() on the main rank only."""
    if d.is_main:
        print(*args, **kwargs)
        sys.stdout.flush()
