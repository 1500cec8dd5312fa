"""Token layout of one question and padded batches of [audio prefix | prompt | answer + EOS].

Training batches are right-padded; decoding batches are left-padded, so every row's last
real position is the last column. Position ids count real positions only (0 at each
row's first real token), so a row gets the same positions alone or inside a batch.
Labels are -100 everywhere except the answer tokens and the EOS that ends them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


def prompt_text(question: str) -> str:
    """Return the text that follows the audio prefix: 'Question: {q}\\nAnswer:'."""
    return f"Question: {question}\nAnswer:"


def prompt_ids(tok, question: str) -> list[int]:
    """Token ids of the prompt (no special tokens)."""
    return list(tok(prompt_text(question), add_special_tokens=False)["input_ids"])


def answer_ids(tok, answer: str) -> list[int]:
    """Token ids of ' {answer}' followed by EOS (the model must learn to stop)."""
    return list(tok(" " + answer.strip(), add_special_tokens=False)["input_ids"]) + [tok.eos_token_id]


@dataclass
class Batch:
    inputs_embeds: torch.Tensor  # (B, T, d)
    attention_mask: torch.Tensor  # (B, T) 1 = real
    position_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T) -100 except answer + EOS


def assemble(prefixes: list[torch.Tensor | None], prompts: list[list[int]], answers: list[list[int]] | None,
             embed: torch.nn.Module, pad_id: int, side: str = "right") -> Batch:
    """Return the padded batch of [prefix | prompt | answer] rows (answers None: prompt only, for decoding)."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    answers = answers if answers is not None else [[] for _ in prompts]
    weight = embed.weight
    rows, labels = [], []
    for prefix, p, a in zip(prefixes, prompts, answers):
        ids = torch.tensor(p + a, dtype=torch.long, device=weight.device)
        parts = [embed(ids)]  # (n_text, d)
        lab = [torch.full((len(p),), IGNORE, dtype=torch.long), torch.tensor(a, dtype=torch.long)]
        if prefix is not None and prefix.shape[0]:
            parts.insert(0, prefix.to(weight.dtype))
            lab.insert(0, torch.full((prefix.shape[0],), IGNORE, dtype=torch.long))
        rows.append(torch.cat(parts, dim=0))  # (T_i, d)
        labels.append(torch.cat(lab))
    width = max(r.shape[0] for r in rows)
    pad_vec = embed(torch.tensor([pad_id], device=weight.device))[0]  # masked out; any finite vector
    B, d = len(rows), weight.shape[1]
    embeds, mask = [], torch.zeros(B, width, dtype=torch.long)
    lab_out = torch.full((B, width), IGNORE, dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labels)):
        n = r.shape[0]
        pad = pad_vec.expand(width - n, d)
        if side == "right":
            embeds.append(torch.cat([r, pad], dim=0))
            mask[i, :n], lab_out[i, :n] = 1, lab
        else:
            embeds.append(torch.cat([pad, r], dim=0))
            mask[i, width - n:], lab_out[i, width - n:] = 1, lab
    positions = (mask.cumsum(dim=1) - 1).clamp_min(0)  # (B, T): 0 at each row's first real token
    dev = weight.device
    return Batch(torch.stack(embeds), mask.to(dev), positions.to(dev), lab_out.to(dev))


def answer_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy of logits [B, T, V] against labels [B, T] (-100 ignored)."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
        ignore_index=IGNORE, reduction=reduction)
