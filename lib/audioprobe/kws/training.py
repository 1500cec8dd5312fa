"""Training loop of the kws lane: AdamW, global grad-norm clipping, best-validation checkpoint.

The origin recipe (lane README, "Training recipe"): AdamW lr 1e-3 with weight decay 0.01 on 2-D
weights only, batch 64, grad clip 1.0, keep the weights of the epoch with the best
validation accuracy and evaluate test on those. On CPU the same seed and thread count
give bit-identical histories: torch's global RNG (init, dropout) and a separate
generator for shuffling are both seeded from one run seed.

Data parallel (torchrun, audioprobe.parallel.dist): the global batch stays `batch_size` whatever
the number of processes N; each rank takes every N-th row of it (dist.GlobalBatchSampler),
augmentation is drawn over the whole global batch before sharding, dropout masks are drawn
for the whole global batch (dist.ShardedDropout), and each rank's loss is its cross-entropy
sum · N / (rows in the global batch), so DDP's average of the ranks' gradients is the
gradient of the global-batch mean, also for a short last batch. Validation/test rows are
sharded the same way and the predictions gathered: accuracies are exact counts. N
processes therefore follow the one-process run up to float reduction order (batch-size
dependent matmul blocking, gradient sums over ranks); one process runs the code it always
ran, bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from audioprobe.parallel.device import pick_device
from audioprobe.parallel.dist import Dist, GlobalBatchSampler, fault_point, global_mean_loss, set_dropout_shard
from audioprobe.metrics.classification import accuracy



def replica_seed(seed: int, replica: int) -> int:
    """Return the torch seed of one replica: a SeedSequence hash of (global seed, replica).

    Hashing (instead of seed + replica) keeps replicas of different global seeds apart:
    seed 42 replica 1 never equals seed 43 replica 0.
    """
    return int(np.random.SeedSequence([seed, replica]).generate_state(1, dtype=np.uint32)[0])


def lr_schedule(name: str, lr: float, total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """Return step -> learning rate: 'constant', 'cosine' (linear warm-up, then cosine to 0),
    or 'plateau' (linear warm-up, then `lr`; PlateauStop lowers it from there)."""
    if name == "constant":
        return lambda step: lr
    if name == "plateau":
        return lambda step: lr * (step + 1) / warmup_steps if step < warmup_steps else lr
    if name != "cosine":
        raise ValueError(f"unknown schedule {name!r}; use 'constant', 'cosine' or 'plateau'")

    def cosine(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        done = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))

    return cosine


class PlateauStop:
    """Reduce-on-plateau learning rate with a stop at the last plateau, on validation accuracy.

    torch's ReduceLROnPlateau (mode max, absolute threshold 0: only a strictly higher
    accuracy is an improvement) multiplies the lr by `factor` once more than `patience`
    epochs passed without one. After `reductions` cuts, the next such plateau ends
    training instead: the best epoch is then at least patience + 1 epochs before the
    last, and a run that never plateaus runs to its epoch cap (reported, not hidden).
    """

    def __init__(self, optim: torch.optim.Optimizer, factor: float, patience: int, reductions: int):
        self.optim, self.reductions_left = optim, reductions
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optim, mode="max", factor=factor, patience=patience, threshold=0.0, threshold_mode="abs",
            eps=0.0)  # torch's default eps=1e-8 silently skips cuts of small learning rates

    def step(self, val_acc: float) -> bool:
        """Record one epoch's validation accuracy; return True when training should stop."""
        before = [g["lr"] for g in self.optim.param_groups]
        self.sched.step(val_acc)
        if all(g["lr"] >= b for g, b in zip(self.optim.param_groups, before)):
            return False
        if self.reductions_left == 0:
            for g, b in zip(self.optim.param_groups, before):
                g["lr"] = b  # the plateau ends the run; the lr it ended at stays on record
            return True
        self.reductions_left -= 1
        return False


def select_device(name: str) -> torch.device:
    """Return the torch device for kws.train.device ('auto' | 'cpu' | 'cuda'), said once on fallback."""
    return pick_device(name, "kws.train.device")


def make_deterministic(seed: int, threads: int, device: torch.device) -> None:
    """Seed torch and fix the CPU thread count; demand deterministic kernels on CPU."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # CUDA has ops without deterministic kernels (and needs CUBLAS_WORKSPACE_CONFIG):
    # only warn there, so a GPU run never fails for the sake of bit-identity.
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float


@dataclass
class TrainResult:
    history: list[EpochRecord]
    best_epoch: int
    best_val_acc: float
    best_state: dict[str, torch.Tensor] = field(repr=False)
    seconds: float
    stop: str = "epochs"  # 'plateau' when PlateauStop ended the run, else 'epochs' (ran them all)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Return bf16 autocast on CUDA when amp == 'bf16'; a no-op otherwise (CPU: always fp32)."""
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device,
    dist: Dist | None = None, amp: str = "none",
) -> tuple[float, float, np.ndarray]:
    """Return (mean cross-entropy, accuracy, predicted class ids [n]) in eval mode.

    With a distributed `dist` each rank evaluates rows rank, rank + N, ... and every rank
    gets the gathered predictions of all n rows and the exact loss sum.
    """
    if dist is not None and dist.distributed:
        return _evaluate_sharded(model, x, y, batch_size, device, dist, amp)
    was_training = model.training
    model.eval()
    loss_sum, preds = 0.0, []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)  # (B, T, n_mels)
        yb = y[start : start + batch_size].to(device)
        with autocast(device, amp):
            logits, _ = model(xb)  # (B, n_classes)
        loss_sum += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
        preds.append(logits.argmax(dim=-1).cpu())
    model.train(was_training)
    pred = torch.cat(preds).numpy()
    return loss_sum / x.shape[0], accuracy(pred, y.numpy()), pred


def _evaluate_sharded(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device, dist: Dist, amp: str
) -> tuple[float, float, np.ndarray]:
    rows = torch.arange(dist.rank, x.shape[0], dist.world)
    was_training = model.training
    model.eval()
    loss_sum, preds = 0.0, [torch.zeros(0, dtype=torch.long)]
    for start in range(0, rows.numel(), batch_size):
        idx = rows[start : start + batch_size]
        xb, yb = x[idx].to(device), y[idx].to(device)  # (b, T, n_mels), (b,)
        with autocast(device, amp):
            logits, _ = model(xb)  # (b, n_classes)
        loss_sum += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
        preds.append(logits.argmax(dim=-1).cpu())
    model.train(was_training)
    pred = np.empty(x.shape[0], dtype=np.int64)
    parts = dist.all_gather_object((loss_sum, torch.cat(preds).numpy()))
    for r, (_, p) in enumerate(parts):
        pred[r :: dist.world] = p
    return sum(ls for ls, _ in parts) / x.shape[0], accuracy(pred, y.numpy()), pred


class _Rows(torch.utils.data.Dataset):
    """In-memory (x, y) rows fetched a batch at a time: dataset[idx tensor] -> (x[idx], y[idx])."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], self.y[idx]


def train(
    model: nn.Module,
    param_groups: list[dict],
    train_xy: tuple[torch.Tensor, torch.Tensor],
    val_xy: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    grad_clip: float,
    eval_batch_size: int,
    seed: int,
    device: torch.device,
    progress: bool = True,
    desc: str = "train",
    schedule: str = "constant",
    warmup_epochs: int = 0,
    plateau: tuple[float, int, int] = (0.1, 2, 2),
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    dist: Dist | None = None,
    amp: str = "none",
    loader_workers: int = 0,
) -> TrainResult:
    """Train `model` in place and return the history and the best-validation weights.

    Ties in validation accuracy keep the earlier epoch. Train loss/accuracy are running
    means over the epoch's batches (dropout on), as the origin logged them. `schedule`
    'cosine' decays the learning rate per batch from `lr` to 0 over all epochs after a
    linear warm-up of `warmup_epochs` ('constant': the origin's fixed lr); 'plateau' warms
    up, then PlateauStop(optimiser, *plateau) = (factor, patience, reductions) lowers the
    lr on validation plateaus and may end the run before `epochs`. `augment(xb, gen)`
    transforms each training batch with the run's own generator (deterministic per seed);
    `on_epoch` receives every epoch's record (the dvclive log; called on every rank).

    `dist` (audioprobe.parallel.dist, world N > 1 under torchrun): `batch_size` is the global batch,
    each rank trains on batch_size / N rows of it under DistributedDataParallel; every rank
    returns the same history and weights. `amp` 'bf16' autocasts on CUDA only.
    `loader_workers` > 0 fetches batches in DataLoader workers (pinned memory on CUDA).
    """
    d = dist if dist is not None else Dist(0, 1, 0, device, None)
    x, y = train_xy
    if x.shape[0] == 0 or val_xy[0].shape[0] == 0:
        raise ValueError(f"need non-empty train and validation splits, got {x.shape[0]} and {val_xy[0].shape[0]}")
    optim = torch.optim.AdamW(param_groups, lr=lr)
    steps_per_epoch = math.ceil(x.shape[0] / batch_size)
    warmup_steps = warmup_epochs * steps_per_epoch
    lr_at = lr_schedule(schedule, lr, epochs * steps_per_epoch, warmup_steps)
    stopper = PlateauStop(optim, *plateau) if schedule == "plateau" else None
    stop = "epochs"
    shuffle = torch.Generator().manual_seed(seed)
    # A second generator for augmentation, so switching augmentation on or off leaves the
    # shuffling order (and with it the comparison between settings) unchanged.
    aug_gen = torch.Generator().manual_seed(seed + 1)
    sampler = GlobalBatchSampler(x.shape[0], batch_size, shuffle, d, whole=augment is not None)
    # batch_size=None: the sampler yields whole batches of row indices. The loader gets its
    # own generator: DataLoader otherwise draws a base seed from torch's global RNG every
    # epoch, which would move the dropout masks.
    loader = torch.utils.data.DataLoader(
        _Rows(x, y), sampler=sampler, batch_size=None, num_workers=loader_workers,
        pin_memory=device.type == "cuda", persistent_workers=loader_workers > 0,
        generator=torch.Generator().manual_seed(seed + 2),
    )
    step = 0
    model.to(device)
    net = d.wrap(model)
    history: list[EpochRecord] = []
    best_epoch, best_acc, best_state = 0, -1.0, {}
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        if d.distributed:
            fault_point(d, f"epoch{epoch}")
        loss_sum, correct = 0.0, 0
        bar = tqdm(loader, total=len(sampler), desc=f"{desc} epoch {epoch}/{epochs}",
                   unit="batch", disable=not progress or not d.is_main, leave=False)
        for i, (xb, yb) in enumerate(bar):  # (B, T, n_mels), (B,): global batch or this rank's rows
            if augment is not None:
                xb = augment(xb, aug_gen)
                if d.distributed:
                    xb, yb = xb[d.rank :: d.world], yb[d.rank :: d.world]
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if stopper is None or step < warmup_steps:  # after warm-up PlateauStop owns the lr
                for group in optim.param_groups:
                    group["lr"] = lr_at(step)
            step += 1
            if d.distributed:
                n_global = sampler.global_size(i)
                rows, weight = slice(d.rank, None, d.world), 1.0
                if yb.numel() == 0:
                    # A short last batch left this rank no row; DDP still needs its backward,
                    # so it runs the first training row with weight 0 (no gradient, not counted).
                    xb, yb = x[:1].to(device), y[:1].to(device)
                    rows, weight = slice(0, 1), 0.0
                set_dropout_shard(model, (n_global, rows))
                with autocast(device, amp):
                    logits, _ = net(xb)  # (b, n_classes)
                    ce_sum = F.cross_entropy(logits.float(), yb, reduction="sum") * weight
                # DDP averages gradients over the N ranks: sum·N/n_global makes that average
                # the gradient of the mean over the global batch, whatever each rank holds.
                loss = global_mean_loss(d, ce_sum, n_global)
            else:
                with autocast(device, amp):
                    logits, _ = net(xb)  # (B, n_classes)
                    loss = F.cross_entropy(logits.float(), yb)  # .float(): a no-op unless autocast
            optim.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optim.step()
            if d.distributed:
                batch_loss = float(ce_sum.detach()) / yb.numel()
                loss_sum += float(ce_sum.detach())
                correct += int(weight) * int((logits.detach().argmax(dim=-1) == yb).sum())
            else:
                batch_loss = float(loss.detach())
                loss_sum += batch_loss * yb.numel()
                correct += int((logits.detach().argmax(dim=-1) == yb).sum())
            bar.set_postfix(loss=f"{batch_loss:.3f}")
        if d.distributed:
            set_dropout_shard(model, None)
            loss_sum, correct = (float(v) for v in d.all_reduce_sum([loss_sum, correct]))
        val_loss, val_acc, _ = evaluate(model, *val_xy, eval_batch_size, device, dist=d, amp=amp)
        rec = EpochRecord(epoch, loss_sum / x.shape[0], correct / x.shape[0], val_loss, val_acc)
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
        if val_acc > best_acc:
            best_epoch, best_acc = epoch, val_acc
            # contiguous: ncps stores its wiring masks as transposed views, which safetensors refuses.
            best_state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
        if progress and d.is_main:
            tqdm.write(f"{desc} epoch {epoch}/{epochs}: train loss {rec.train_loss:.4f} acc {rec.train_acc:.4f}"
                       f" | val loss {val_loss:.4f} acc {val_acc:.4f}")
        # every rank holds the same (gathered) val_acc, so every rank stops at the same epoch
        if stopper is not None and epoch > warmup_epochs and stopper.step(val_acc):
            stop = "plateau"
            break
    return TrainResult(history, best_epoch, best_acc, best_state, time.perf_counter() - t0, stop)
