"""The mapper training loop on a frozen LM: token batches of an arm's rows, warmup/cosine schedule, dev loss.

An arm's clip inputs (encoder, blind or shuffled audio) come from `audioprobe.reason.arms`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from audioprobe.parallel.dist import Dist, fault_point, global_mean_loss, rank_rows
from audioprobe.reason.batching import answer_ids, answer_loss, assemble, prompt_ids
from audioprobe.reason.mapper import AudioMapper


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1 over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


class ArmBatches:
    """Token ids of every row (prompt, answer + EOS) next to its clip inputs."""

    def __init__(self, tok, rows: list[dict], inputs: list[list[torch.Tensor]]):
        self.prompts = [prompt_ids(tok, r["input"]) for r in rows]
        self.answers = [answer_ids(tok, r["answer"]) for r in rows]
        self.inputs = inputs

    def __len__(self) -> int:
        return len(self.prompts)

    def loss(self, lm, mapper: AudioMapper, idx: list[int], pad_id: int, reduction: str = "mean") -> torch.Tensor:
        """Answer + EOS cross-entropy of rows `idx` (labels -100 on audio, question and pad)."""
        prefixes = mapper([self.inputs[i] for i in idx])
        batch = assemble(prefixes, [self.prompts[i] for i in idx], [self.answers[i] for i in idx],
                         lm.get_input_embeddings(), pad_id, side="right")
        logits = lm(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids).logits  # (B, T, V)
        return answer_loss(logits, batch.labels, reduction=reduction)

    def n_targets(self, idx: list[int]) -> int:
        return sum(len(self.answers[i]) for i in idx)


@torch.no_grad()
def dev_loss(lm, mapper: AudioMapper, data: ArmBatches, pad_id: int, batch_size: int, d: Dist | None = None) -> float:
    """Return the mean answer-token loss over every dev row.

    Distributed: rank r evaluates batches r, r + N, ... (the batches one process cuts), and
    the per-batch sums are gathered and added in batch order, as one process adds them.
    """
    mapper.eval()
    world, rank = (d.world, d.rank) if d is not None else (1, 0)
    parts = []
    for b in list(range(0, len(data), batch_size))[rank::world]:
        idx = list(range(b, min(b + batch_size, len(data))))
        parts.append((b, float(data.loss(lm, mapper, idx, pad_id, reduction="sum")), data.n_targets(idx)))
    if world > 1:
        parts = sorted(p for ps in d.all_gather_object(parts) for p in ps)
    total, count = 0.0, 0
    for _, s, n in parts:
        total += s
        count += n
    mapper.train()
    return total / max(count, 1)


def train_mapper(lm, mapper: AudioMapper, train: ArmBatches, dev: ArmBatches, pad_id: int, cfg, seed: int,
                 log: Callable[[dict], None] | None = None,
                 d: Dist | None = None, progress: str | None = None) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Train the mapper (LM frozen) with AdamW + warmup/cosine; return (best-by-dev state, history rows).

    History: one row per `eval_every` steps {step, train_loss (mean since the last row),
    dev_loss, lr}; `log(row)` is called for each (the dvclive curves; on every rank).

    `d` (audioprobe.parallel.dist, world N > 1 under torchrun): every rank draws the same global batch
    of `batch_size` rows from the same generator and trains on rows rank, rank + N, ... of it
    under DistributedDataParallel; the loss is scaled so the averaged gradient is that of the
    mean answer-token loss over the global batch (audioprobe.parallel.global_batch). Every rank
    returns the same state and history. World 1 runs exactly the single-process loop.
    """
    world = d.world if d is not None else 1
    gen = torch.Generator().manual_seed(seed)
    net = d.wrap(mapper, find_unused=True) if d is not None else mapper  # world 1 trains `mapper` itself
    opt = torch.optim.AdamW([p for p in mapper.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.max_steps))
    best, best_state, history, window = math.inf, None, [], []
    mapper.train()
    # `progress`: a tqdm bar over the steps with that label (stderr; the caller passes it on rank 0 only)
    steps = tqdm(range(1, cfg.max_steps + 1), desc=progress, unit="step", disable=progress is None,
                 mininterval=1.0 if sys.stderr.isatty() else 15.0)
    for step in steps:
        idx = torch.randint(len(train), (min(cfg.batch_size, len(train)),), generator=gen).tolist()
        if world > 1:
            fault_point(d, f"reason.step{step}")
            # Each rank: its rows' token-loss sum, scaled to the global batch's token count.
            loss_sum = train.loss(lm, net, rank_rows(d, idx), pad_id, reduction="sum")
            loss = global_mean_loss(d, loss_sum, train.n_targets(idx))
        else:
            loss = train.loss(lm, mapper, idx, pad_id)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mapper.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        # world > 1: this rank's share of the global mean (summed over ranks below).
        window.append(loss.item() / world)
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            if world > 1:
                window = d.all_reduce_sum(window).tolist()  # (steps,): each step's global-batch mean
            dl = dev_loss(lm, mapper, dev, pad_id, max(cfg.batch_size, 32), d)
            row = {"step": step, "train_loss": float(np.mean(window)), "dev_loss": dl,
                   "lr": float(sched.get_last_lr()[0])}
            window = []
            history.append(row)
            if log:
                log(row)
            if dl < best:
                best = dl
                best_state = {k: v.detach().clone() for k, v in mapper.state_dict().items()}
    assert best_state is not None
    return best_state, history


def train_prefix_lm(lm, front: AudioMapper, data: ArmBatches, pad_id: int, steps: int, batch_size: int, lr: float,
                    seed: int) -> list[float]:
    """Train the LM *and* a front-end mapper on [audio prefix | prompt | answer + EOS] rows; return the losses.

    The embedded stand-in for an LM pretrained to hear (reason_lm, after its text phase): both
    learn together, AdamW with a cosine decay, gradient norm clipped at 1. The caller freezes the
    LM afterwards and drops `front`; only the rows in `data` (the train split) are ever seen.
    """
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in (*lm.parameters(), *front.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    lm.train()
    front.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(data), (min(batch_size, len(data)),), generator=gen).tolist()
        loss = data.loss(lm, front, idx, pad_id)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    lm.eval()
    front.eval()
    return losses
