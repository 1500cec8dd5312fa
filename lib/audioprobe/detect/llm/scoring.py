"""Constrained A/B scoring: p(SPEECH) from the last-position logits of one forward pass.

p(SPEECH) = sigmoid(logsumexp(logits[V_A]) - logsumexp(logits[V_B])), where V_A is the
set of single-token spellings of the answer "A" the tokenizer has: "A" and " A" (a
tokenizer may start an answer with or without a leading space). Lower-case "a" is left
out on purpose: " a" is the English article, so its logit measures fluency, not the
choice. The two sets are derived from the tokenizer and must be non-empty and disjoint.
This is the two-way softmax over the answer letters, i.e. generation constrained to A/B.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from audioprobe.detect.llm.batch import AudioFeatures, build_batch
from audioprobe.detect.llm.prompt import PromptIds

SPELLINGS = ("{}", " {}")  # how an answer letter may be written as one token


def variant_ids(tokenizer, letter: str) -> list[int]:
    """Sorted ids of every single-token spelling of `letter` (spellings that need two tokens are skipped)."""
    out = set()
    for form in SPELLINGS:
        ids = tokenizer(form.format(letter), add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            out.add(ids[0])
    if not out:
        raise ValueError(f"the tokenizer has no single-token spelling of {letter!r}")
    return sorted(out)


def answer_sets(tokenizer) -> tuple[list[int], list[int]]:
    """(ids of 'A' spellings, ids of 'B' spellings), checked disjoint."""
    a, b = variant_ids(tokenizer, "A"), variant_ids(tokenizer, "B")
    if set(a) & set(b):
        raise ValueError(f"answer token sets overlap: A {a}, B {b}")
    return a, b


def p_speech(logits: torch.Tensor, a_ids: list[int], b_ids: list[int]) -> torch.Tensor:
    """[N] p(SPEECH) from [N, vocab] last-position logits (computed in float64)."""
    x = logits.double()
    margin = torch.logsumexp(x[:, a_ids], -1) - torch.logsumexp(x[:, b_ids], -1)
    return torch.sigmoid(margin)


@dataclass
class Timings:
    """Seconds spent per component (host timings: printed, never written into DVC outputs)."""

    seconds: dict[str, float] = field(default_factory=lambda: {"batching": 0.0, "model": 0.0, "post": 0.0})

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + dt


def last_logits(model, batch: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[N, vocab] logits at the last position (every row ends there: left padding)."""
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    inputs["input_features"] = inputs["input_features"].to(dtype)
    out = model(**inputs)
    return out.logits[:, -1, :].float()


@torch.no_grad()
def score(model, processor, pids: PromptIds, audio: AudioFeatures, device: torch.device, dtype: torch.dtype,
          batch_size: int, idx: np.ndarray | None = None, timings: Timings | None = None) -> np.ndarray:
    """p(SPEECH) of clips `idx` (default all), in that order; batches of `batch_size`."""
    tok = processor.tokenizer
    a_ids, b_ids = answer_sets(tok)
    audio_id = tok.convert_tokens_to_ids(processor.audio_token)
    idx = np.arange(len(audio)) if idx is None else np.asarray(idx)
    out = np.empty(len(idx), dtype=np.float64)
    for s in range(0, len(idx), batch_size):
        t0 = time.perf_counter()
        batch = build_batch(pids, audio, idx[s : s + batch_size], audio_id, tok.pad_token_id)
        t1 = time.perf_counter()
        logits = last_logits(model, batch, device, dtype)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        out[s : s + len(batch["input_ids"])] = p_speech(logits, a_ids, b_ids).cpu().numpy()
        if timings is not None:
            timings.add("batching", t1 - t0)
            timings.add("model", t2 - t1)
            timings.add("post", time.perf_counter() - t2)
    return out
