"""Benchmark the reason lane: mapper train steps/s per encoder shape, and KV-cached vs full-recompute decoding.

    python -m audioprobe.bench.reason [--device cuda] [--lm embedded|PATH|HUB_ID] [--steps 20]
                                      [--rows 64] [--batch-size 16] [--max-new-tokens 16] [--seconds 8] [--threads 1]

Training: mapper + frozen LM forward/backward steps on synthetic frames shaped like each
encoder's output (mel 64-d at 12.5 Hz, htsat 768-d at 32 frames per 7 s, mimi 512-d at
12.5 Hz; the encoders themselves are not run, their cost is the encode stage's). The LM
is a random LM shaped by params `reason.lm` (`--lm embedded`) or a real one from a
local folder / cached hub id. Decoding: the same left-padded batches decoded greedily
with the KV cache and with a full recompute of the sequence at every step (the origin's
decoder), same tokens, timed in the same run; the ratio is the speed-up. Timings on a
shared CPU are inflated. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from audioprobe.encoders import pick_device
from audioprobe.reason import lm as lmlib
from audioprobe.reason.batching import prompt_ids
from audioprobe.reason.decode import greedy_decode
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.params import ReasonLM, ReasonTrain
from audioprobe.reason.training import ArmBatches, train_mapper

SHAPES = {"mel": (64, 12.5), "htsat": (768, 32 / 7), "mimi_semantic": (512, 12.5), "mimi_full": (512, 12.5)}
QUESTIONS = ["What is the main sound source in this audio?", "Is there rain in this recording?",
             "Which recording is louder, the first or the second?", "Is the sound loud or quiet?"]


def _lm(name: str, device: torch.device):
    if name == "embedded":
        cfg = ReasonLM()
        tok = lmlib.build_tokenizer([lmlib.prompt_text(q) + " dog" for q in QUESTIONS] * 8, cfg.vocab_size)
        torch.manual_seed(0)
        model = lmlib.tiny_llama(tok, cfg).eval().requires_grad_(False)
    else:
        model, tok = lmlib.load_frozen_lm(lmlib.resolve_lm(name, "", param="--lm"))
    return model.to(device), tok


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--lm", default="embedded")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--encoders", default="mel,htsat,mimi_semantic")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: no spinning on a shared box)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, tok = _lm(args.lm, device)
    g = torch.Generator().manual_seed(0)
    rows = [{"input": QUESTIONS[i % len(QUESTIONS)], "answer": "dog barking"} for i in range(args.rows)]
    out: dict = {"device": str(device), "lm": args.lm, "lm_params": sum(p.numel() for p in model.parameters()),
                 "batch_size": args.batch_size, "train_steps_per_s": {}}
    for enc in args.encoders.split(","):
        dim, rate = SHAPES[enc]
        frames = max(1, round(args.seconds * rate))
        inputs = [[torch.randn(frames, dim, generator=g).to(device)] for _ in rows]
        mapper = AudioMapper(dim, model.config.hidden_size).to(device)
        data = ArmBatches(tok, rows, inputs)
        cfg = ReasonTrain(max_steps=args.steps, eval_every=args.steps + 1, batch_size=args.batch_size,
                          warmup_steps=1)
        train_mapper(model, mapper, data, ArmBatches(tok, rows[:4], inputs[:4]), tok.pad_token_id,
                     cfg.model_copy(update={"max_steps": 2}), 0)  # warm-up
        t0 = time.perf_counter()
        train_mapper(model, mapper, data, ArmBatches(tok, rows[:4], inputs[:4]), tok.pad_token_id, cfg, 0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out["train_steps_per_s"][enc] = round(args.steps / (time.perf_counter() - t0), 3)
        print(f"train {enc}: {out['train_steps_per_s'][enc]} steps/s ({frames} frames x {dim})", flush=True)
    # Decoding: same prefixes and prompts, cached vs full recompute; tokens must agree.
    dim, rate = SHAPES["mel"]
    lengths = [max(1, round(args.seconds * rate * (0.5 + 0.5 * (i % 3) / 2))) for i in range(args.batch_size)]
    prefixes = [torch.randn(n, model.config.hidden_size, generator=g).to(device) * 0.5 for n in lengths]
    prompts = [prompt_ids(tok, QUESTIONS[i % len(QUESTIONS)]) for i in range(args.batch_size)]
    eos = -1  # never stops early: both decoders produce max_new_tokens per row
    rates, tokens = {}, {}
    for name, cache in (("kv_cache", True), ("no_cache", False)):
        greedy_decode(model, prefixes[:2], prompts[:2], eos, tok.pad_token_id, 2, use_cache=cache)  # warm-up
        t0 = time.perf_counter()
        tokens[name] = greedy_decode(model, prefixes, prompts, eos, tok.pad_token_id, args.max_new_tokens,
                                     use_cache=cache)
        if device.type == "cuda":
            torch.cuda.synchronize()
        n = sum(len(t) for t in tokens[name])
        rates[name] = round(n / (time.perf_counter() - t0), 2)
        print(f"decode {name}: {rates[name]} tokens/s", flush=True)
    out["decode_tokens_per_s"] = rates
    out["decode_speedup_kv_vs_no_cache"] = round(rates["kv_cache"] / rates["no_cache"], 3)
    out["decode_same_tokens"] = tokens["kv_cache"] == tokens["no_cache"]
    print(json.dumps(out, sort_keys=True))
    return out


if __name__ == "__main__":
    main()
