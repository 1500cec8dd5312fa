"""LoRA fine-tuning of Qwen2-Audio on the A/B answer: answer-token loss, SpecAugment, AdamW, best-by-dev adapter.

Loss: cross-entropy of the answer letter only, predicted from the last prompt position
(labels are -100 everywhere else; the origin also trained on the template tokens after
the answer). Schedule: linear warmup over `warmup_steps` optimiser steps (capped at 10 %
of the run), then cosine decay to 0; gradients accumulate over `grad_accum` batches.
Every `eval_every` optimiser steps (and at the end) the dev loss and dev balanced
accuracy are measured; the adapter state with the lowest dev loss is the one saved.
The saved adapter is peft's `adapter_config.json` + `adapter_model.safetensors` only.

Embedded stand-in only: its LM head never produced the letters "A"/"B" in pretraining, so
`lora.embedded_modules_to_save` (the LM head) trains in full (peft modules_to_save) and
`finetune.embedded_lr` replaces the origin's 2e-4; and before LoRA trains, the head alone is fitted
for `finetune.embedded_probe_steps` steps on the frozen network (`probe_head`: linear probing
then fine-tuning, LP-FT). Without the probe the first large steps, spent raising the letters'
logits from nowhere, also move the LoRA weights, and the run sits at the A/B prior (dev loss
ln 2) for 100-360 steps depending on the seed. Real weights use LoRA alone.

Data-parallel (N processes under torchrun, audioprobe.parallel.dist): every rank draws the same
epoch order and the same SpecAugment over each whole batch of `batch_size` clips, pads it
to the width one process pads it to, and keeps rows rank, rank + N, ... of it; LoRA
dropout draws the whole batch's mask and keeps the same rows (dist.ShardedDropout), so
every rank applies the masks one process applies and the RNG streams stay in step. Each
rank's loss is its answer-token sum scaled so DDP's gradient mean is the one-process
gradient (audioprobe.parallel.dist); dev batches are split between ranks and gathered in
batch order. One process runs the plain loop, unchanged.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audioprobe.detect.llm.batch import IGNORE, AudioFeatures, build_batch
from audioprobe.detect.llm.params import LlmFinetune, LlmLora
from audioprobe.detect.llm.prompt import PromptIds
from audioprobe.detect.llm.scoring import answer_sets, p_speech
from audioprobe.parallel.dist import Dist, ShardedDropout, fault_point, global_mean_loss, set_dropout_shard

WARMUP_CAP = 0.1  # warmup never exceeds this fraction of the optimiser steps


def spec_augment(feats: torch.Tensor, mask: torch.Tensor, cfg: LlmFinetune, gen: torch.Generator) -> torch.Tensor:
    """[N, mel, T] features with, per clip and with probability specaug_p, one frequency and one time mask.

    Frequency mask: width uniform in [0, specaug_freq] mel bins. Time mask: width uniform in
    [0, specaug_time x the clip's own frames] (padding frames are never counted or masked).
    Masked cells take the clip's mean over its real frames (a neutral value of the log-mel).
    """
    out = feats.clone()
    n_mel = feats.shape[1]
    for i in range(feats.shape[0]):
        if torch.rand((), generator=gen).item() >= cfg.specaug_p:
            continue
        frames = int(mask[i].sum())
        fill = out[i, :, :frames].mean()
        f = int(torch.randint(0, cfg.specaug_freq + 1, (), generator=gen))
        if f:
            f0 = int(torch.randint(0, n_mel - f + 1, (), generator=gen))
            out[i, f0 : f0 + f, :frames] = fill
        t = int(torch.randint(0, int(cfg.specaug_time * frames) + 1, (), generator=gen))
        if t:
            t0 = int(torch.randint(0, frames - t + 1, (), generator=gen))
            out[i, :, t0 : t0 + t] = fill
    return out


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Multiplier of the peak lr at optimiser step `step` (0-based): linear warmup, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def answer_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over labelled positions (mean, or sum); logits at t predict the token at t+1."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction=reduction)


def n_answer_tokens(labels: torch.Tensor) -> int:
    """Labelled positions answer_loss averages over (the answer tokens of every row)."""
    return int((labels[:, 1:] != IGNORE).sum())


def balanced_accuracy(p: np.ndarray, y: np.ndarray) -> float:
    """Mean of the per-class recalls at threshold 0.5 (y: 1 = SPEECH)."""
    pred = p >= 0.5
    return float(np.mean([np.mean(pred[y == c] == bool(c)) for c in (0, 1) if np.any(y == c)]))


def lora_model(base, lora: LlmLora, embedded: bool, seed: int = 0):
    """Wrap `base` with a fresh, seeded LoRA adapter (peft); the embedded stand-in also trains its modules_to_save."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)  # lora_A's init draws from the global generator

    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.targets),
                        modules_to_save=list(lora.embedded_modules_to_save) if embedded else None)
    return get_peft_model(base, config)


def probe_head(model, processor, pids: PromptIds, audio: AudioFeatures, labels: list[str], steps: int,
               batch_size: int, lr: float, device: torch.device, dtype: torch.dtype, seed: int = 0) -> list[float]:
    """Fit the peft modules_to_save (the embedded LM head) alone for `steps` AdamW steps; return the losses.

    Every other weight (LoRA included) is frozen meanwhile and the model runs in eval mode, so
    this is a linear probe of the frozen network's last hidden state (answer-token loss, seeded
    random batches, no augmentation). Gradients stop at the head: a step costs about one forward.
    """
    if steps <= 0:
        return []
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = [p for n, p in trainable if "modules_to_save" in n]
    if not head:
        raise ValueError("probe_head: the model has no modules_to_save to probe")
    for n, p in trainable:
        p.requires_grad_("modules_to_save" in n)
    tok = processor.tokenizer
    audio_id = tok.convert_tokens_to_ids(processor.audio_token)
    opt = torch.optim.AdamW(head, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng([seed, 37])
    model.eval()
    losses = []
    try:
        for _ in range(steps):
            idx = np.sort(rng.choice(len(audio), size=min(batch_size, len(audio)), replace=False))
            b = build_batch(pids, audio, idx, audio_id, tok.pad_token_id, labels=[labels[i] for i in idx])
            lab = b.pop("labels").to(device)
            b = {k: v.to(device) for k, v in b.items()}
            b["input_features"] = b["input_features"].to(dtype)
            loss = answer_loss(model(**b).logits, lab)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.item()))
    finally:
        for _, p in trainable:
            p.requires_grad_(True)
    return losses


def shard_lora_dropout(model) -> int:
    """Swap every peft LoRA dropout (nn.Dropout) in `model` for a dist.ShardedDropout of the same p; return how many."""
    n = 0
    for m in model.modules():
        drops = getattr(m, "lora_dropout", None)
        if not isinstance(drops, torch.nn.ModuleDict):
            continue
        for name, drop in list(drops.items()):
            if type(drop) is torch.nn.Dropout:  # p = 0 is an nn.Identity: nothing to draw
                drops[name] = ShardedDropout(drop.p)
                n += 1
    return n


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)  # one per evaluation
    best_step: int = -1
    best_dev_loss: float = math.inf


@torch.no_grad()
def evaluate(model, processor, pids: PromptIds, audio: AudioFeatures, labels: list[str], batch_size: int,
             device: torch.device, dtype: torch.dtype, d: Dist | None = None) -> tuple[float, float]:
    """(dev answer loss, dev balanced accuracy at p >= 0.5) over every clip of `audio`.

    Distributed: rank r evaluates batches r, r + N, ... (the batches one process cuts); the
    per-batch results are gathered and combined in batch order, as one process combines them.
    """
    tok = processor.tokenizer
    a_ids, b_ids = answer_sets(tok)
    audio_id = tok.convert_tokens_to_ids(processor.audio_token)
    world, rank = (d.world, d.rank) if d is not None else (1, 0)
    model.eval()
    parts = []  # (batch start, loss x clips, p(SPEECH) [clips])
    for s in list(range(0, len(audio), batch_size))[rank::world]:
        idx = np.arange(s, min(len(audio), s + batch_size))
        b = build_batch(pids, audio, idx, audio_id, tok.pad_token_id, labels=[labels[i] for i in idx])
        lab = b.pop("labels").to(device)
        b = {k: v.to(device) for k, v in b.items()}
        b["input_features"] = b["input_features"].to(dtype)
        logits = model(**b).logits
        # the answer sits right after the prompt, len(tail) + 1 from the end
        pos = logits.shape[1] - len(pids.tail) - 2
        parts.append((s, answer_loss(logits, lab).item() * len(idx),
                      p_speech(logits[:, pos].float(), a_ids, b_ids).cpu().numpy()))
    if world > 1:
        parts = sorted((p for ps in d.all_gather_object(parts) for p in ps), key=lambda p: p[0])
    y = np.array([lab == "SPEECH" for lab in labels], dtype=int)
    return sum(p[1] for p in parts) / len(audio), balanced_accuracy(np.concatenate([p[2] for p in parts]), y)


def train(model, processor, pids: PromptIds, train_audio: AudioFeatures, train_labels: list[str],
          dev_audio: AudioFeatures, dev_labels: list[str], cfg: LlmFinetune, lr: float, device: torch.device,
          dtype: torch.dtype, log=None, d: Dist | None = None, seed: int = 0) -> History:
    """Train the peft `model` in place; at the end it holds the best-by-dev-loss adapter state.

    `log(step, **metrics)` (e.g. a dvclive TrainingLog) receives train_loss, dev_loss and
    dev_balanced_accuracy at every evaluation.

    `d` (audioprobe.parallel.dist, world N > 1 under torchrun): each rank trains rows rank, rank + N,
    ... of every batch under DistributedDataParallel (see the module docstring); every rank
    ends with the same adapter state and history. World 1 runs the plain loop.
    """
    world = d.world if d is not None else 1
    if world > 1 and cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {world} processes")
    net = model
    if world > 1:
        shard_lora_dropout(model)
        net = d.wrap(model)
    torch.manual_seed(seed)  # LoRA dropout draws from the global generator
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok = processor.tokenizer
    audio_id = tok.convert_tokens_to_ids(processor.audio_token)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(math.ceil(len(train_audio) / cfg.batch_size) / cfg.grad_accum)
    total = per_epoch * cfg.epochs
    warmup = min(cfg.warmup_steps, int(WARMUP_CAP * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, total))
    hist = History()
    best_state = None
    step, running, seen = 0, 0.0, 0
    shares: list[float] = []  # world > 1: this rank's share of each batch's loss x clips

    def checkpoint() -> None:
        nonlocal best_state, running, seen, shares
        if world > 1:  # each batch's loss x clips, summed over ranks, added in batch order
            running = sum(d.all_reduce_sum(shares).tolist()) if shares else 0.0
            shares = []
        dev_loss, dev_ba = evaluate(model, processor, pids, dev_audio, dev_labels, cfg.batch_size, device, dtype, d)
        row = {"step": step, "train_loss": running / max(seen, 1), "dev_loss": dev_loss,
               "dev_balanced_accuracy": dev_ba}
        hist.rows.append(row)
        if log is not None:
            log(step, **{k: v for k, v in row.items() if k != "step"})
        if dev_loss < hist.best_dev_loss:
            hist.best_dev_loss, hist.best_step = dev_loss, step
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if _trainable_key(k)}
        running, seen = 0.0, 0
        model.train()

    model.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(train_audio))
        batches = [order[s : s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
        for g in range(0, len(batches), cfg.grad_accum):
            group = batches[g : g + cfg.grad_accum]
            n_group = sum(len(b) for b in group)
            for j, idx in enumerate(group):
                feats = spec_augment(train_audio.features[idx], train_audio.mask[idx], cfg, gen)
                b = build_batch(pids, train_audio, idx, audio_id, tok.pad_token_id,
                                labels=[train_labels[i] for i in idx], features=feats)
                if world > 1:
                    fault_point(d, f"detect.finetune.step{step + 1}")
                    # the gradient syncs once per optimiser step, on the group's last batch
                    sync = j == len(group) - 1
                    shares.append(_rank_backward(net, model, d, b, len(idx), n_group, sync, device, dtype))
                    seen += len(idx)
                    continue
                lab = b.pop("labels").to(device)
                b = {k: v.to(device) for k, v in b.items()}
                b["input_features"] = b["input_features"].to(dtype)
                loss = answer_loss(model(**b).logits, lab)
                (loss * len(idx) / n_group).backward()  # the group's mean over clips
                running += loss.item() * len(idx)
                seen += len(idx)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % cfg.eval_every == 0 and step < total:
                checkpoint()
    checkpoint()
    model.load_state_dict(best_state, strict=False)
    set_dropout_shard(model, None)
    model.eval()
    return hist


def _rank_backward(net, model, d: Dist, batch: dict[str, torch.Tensor], n_batch: int, n_group: int, sync: bool,
                   device: torch.device, dtype: torch.dtype) -> float:
    """Backward of this rank's rows of one whole batch; return its share of the batch's loss x clips.

    One process backpropagates mean_b x n_batch / n_group (mean_b: the batch's mean
    answer-token loss). Here each rank backpropagates its rows' token sum x N / n_tokens_b
    x n_batch / n_group, which DDP averages over the N ranks into that same gradient. A
    rank left without rows (a last batch smaller than N) runs row 0 with weight 0, so its
    DDP hooks fire and its dropout draws keep the RNG in step.
    """
    n_tok = n_answer_tokens(batch["labels"])
    rows = slice(d.rank, None, d.world)
    weight = 1.0
    if d.rank >= n_batch:
        rows, weight = slice(0, 1), 0.0
    # rows of the batch padded to its full width: the inputs (and dropout masks) one process has for them
    b = {k: v[rows].to(device) for k, v in batch.items()}
    lab = b.pop("labels")
    b["input_features"] = b["input_features"].to(dtype)
    set_dropout_shard(model, (n_batch, rows))
    with contextlib.nullcontext() if sync else net.no_sync():
        loss_sum = answer_loss(net(**b).logits, lab, reduction="sum")
        (global_mean_loss(d, loss_sum, n_tok) * (weight * n_batch / n_group)).backward()
    return weight * loss_sum.item() / n_tok * n_batch


def _trainable_key(key: str) -> bool:
    return "lora_" in key or "modules_to_save" in key


def save_adapter(model, out: Path, base_id: str) -> None:
    """Write the adapter alone (adapter_config.json + adapter_model.safetensors) with host-free metadata."""
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "README.md").unlink(missing_ok=True)  # peft's model card: boilerplate, not needed
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    # peft records the folder the base was loaded from (a host path): name the base instead
    cfg["base_model_name_or_path"] = base_id
    # peft keeps target_modules (and modules_to_save) as sets: their saved order follows the
    # process's string-hash seed, so sort them or two identical runs write different bytes.
    for key in ("target_modules", "modules_to_save"):
        if isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key])
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    left = sorted(p.name for p in out.iterdir())
    if left != ["adapter_config.json", "adapter_model.safetensors"]:
        raise RuntimeError(f"{out}: unexpected adapter files {left}")
