"""Training loop of the kws lane: AdamW, global grad-norm clipping, best-validation checkpoint.

The origin recipe (lane README, "Training recipe"): AdamW lr 1e-3 with weight decay 0.01 on 2-D
weights only, batch 64, grad clip 1.0, keep the weights of the epoch with the best
validation accuracy and evaluate test on those. On CPU the same seed and thread count
give bit-identical histories: torch's global RNG (init, dropout) and a separate
generator for shuffling are both seeded from one run seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from audioprobe.device import pick_device
from audioprobe.metrics.classification import accuracy



def replica_seed(seed: int, replica: int) -> int:
    """Return the torch seed of one replica: a SeedSequence hash of (global seed, replica).

    Hashing (instead of seed + replica) keeps replicas of different global seeds apart:
    seed 42 replica 1 never equals seed 43 replica 0.
    """
    return int(np.random.SeedSequence([seed, replica]).generate_state(1, dtype=np.uint32)[0])


def lr_schedule(name: str, lr: float, total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """Return step -> learning rate: 'constant', or 'cosine' (linear warm-up, then cosine to 0)."""
    if name == "constant":
        return lambda step: lr
    if name != "cosine":
        raise ValueError(f"unknown schedule {name!r}; use 'constant' or 'cosine'")

    def cosine(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        done = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))

    return cosine


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


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> tuple[float, float, np.ndarray]:
    """Return (mean cross-entropy, accuracy, predicted class ids [n]) in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, preds = 0.0, []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)  # (B, T, n_mels)
        yb = y[start : start + batch_size].to(device)
        logits, _ = model(xb)  # (B, n_classes)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        preds.append(logits.argmax(dim=-1).cpu())
    model.train(was_training)
    pred = torch.cat(preds).numpy()
    return loss_sum / x.shape[0], accuracy(pred, y.numpy()), pred


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
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train `model` in place and return the history and the best-validation weights.

    Ties in validation accuracy keep the earlier epoch. Train loss/accuracy are running
    means over the epoch's batches (dropout on), as the origin logged them. `schedule`
    'cosine' decays the learning rate per batch from `lr` to 0 over all epochs after a
    linear warm-up of `warmup_epochs` ('constant': the origin's fixed lr). `augment(xb, gen)`
    transforms each training batch with the run's own generator (deterministic per seed);
    `on_epoch` receives every epoch's record (the dvclive log).
    """
    x, y = train_xy
    if x.shape[0] == 0 or val_xy[0].shape[0] == 0:
        raise ValueError(f"need non-empty train and validation splits, got {x.shape[0]} and {val_xy[0].shape[0]}")
    optim = torch.optim.AdamW(param_groups, lr=lr)
    steps_per_epoch = math.ceil(x.shape[0] / batch_size)
    lr_at = lr_schedule(schedule, lr, epochs * steps_per_epoch, warmup_epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(seed)
    # A second generator for augmentation, so switching augmentation on or off leaves the
    # shuffling order (and with it the comparison between settings) unchanged.
    aug_gen = torch.Generator().manual_seed(seed + 1)
    step = 0
    model.to(device)
    history: list[EpochRecord] = []
    best_epoch, best_acc, best_state = 0, -1.0, {}
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(x.shape[0], generator=shuffle)
        loss_sum, correct = 0.0, 0
        bar = tqdm(range(0, x.shape[0], batch_size), desc=f"{desc} epoch {epoch}/{epochs}",
                   unit="batch", disable=not progress, leave=False)
        for start in bar:
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]  # (B, T, n_mels), (B,)
            if augment is not None:
                xb = augment(xb, aug_gen)
            xb, yb = xb.to(device), yb.to(device)
            for group in optim.param_groups:
                group["lr"] = lr_at(step)
            step += 1
            logits, _ = model(xb)  # (B, n_classes)
            loss = F.cross_entropy(logits, yb)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optim.step()
            batch_loss = float(loss.detach())
            loss_sum += batch_loss * idx.numel()
            correct += int((logits.detach().argmax(dim=-1) == yb).sum())
            bar.set_postfix(loss=f"{batch_loss:.3f}")
        val_loss, val_acc, _ = evaluate(model, *val_xy, eval_batch_size, device)
        rec = EpochRecord(epoch, loss_sum / x.shape[0], correct / x.shape[0], val_loss, val_acc)
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
        if val_acc > best_acc:
            best_epoch, best_acc = epoch, val_acc
            # contiguous: ncps stores its wiring masks as transposed views, which safetensors refuses.
            best_state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
        if progress:
            tqdm.write(f"{desc} epoch {epoch}/{epochs}: train loss {rec.train_loss:.4f} acc {rec.train_acc:.4f}"
                       f" | val loss {val_loss:.4f} acc {val_acc:.4f}")
    return TrainResult(history, best_epoch, best_acc, best_state, time.perf_counter() - t0)
