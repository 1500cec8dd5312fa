"""Benchmark the audio-LLM detector: scoring clips/s (batch 1 vs batched) and seconds per LoRA training step.

    python -m audioprobe.bench.detect [--n 64] [--batch-size 16] [--steps 5] [--threads 1]
                                      [--model Qwen/Qwen2-Audio-7B-Instruct] [--device auto|cpu|cuda]
                                      [--load-in-4bit]

Always measures the tiny random stand-in (built in a temp folder) on the CPU; with
--model (a hub id in the local cache or a folder) also that model, on CUDA when one is
there (bf16). Clips are synthetic 0.2-1 s waves (timing only). Reported: clips/s of
scoring at batch 1 and at --batch-size (and their ratio, measured in the same run),
seconds per training step (batch 8, answer-token loss, LoRA r 16 on q/k/v/o, plus the
stand-in's modules_to_save). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audioprobe.detect.llm.batch import build_batch, extract
from audioprobe.detect.llm.finetune import answer_loss, lora_model
from audioprobe.detect.llm.base import write_base
from audioprobe.detect.llm.model import load_base
from audioprobe.detect.llm.params import DEFAULT_SYSTEM, DEFAULT_USER, LlmLora, LlmModel
from audioprobe.detect.llm.prompt import Prompt, encode_prompt
from audioprobe.detect.llm.scoring import score

SR = 16000


def clips(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    waves = [(0.1 * rng.standard_normal(int(SR * rng.choice([0.2, 0.3, 0.5, 1.0])))).astype(np.float32)
             for _ in range(n)]
    return waves, ["SPEECH" if i % 2 == 0 else "NONSPEECH" for i in range(n)]


def measure(base_dir: Path, cfg: LlmModel, n: int, batch_size: int, steps: int, embedded: bool) -> dict:
    loaded = load_base(base_dir, cfg)
    proc = loaded.processor
    waves, labels = clips(n)
    t0 = time.perf_counter()
    audio = extract(proc, waves, SR)
    features_s = time.perf_counter() - t0
    pids = encode_prompt(proc, Prompt(DEFAULT_SYSTEM, DEFAULT_USER))
    sync = torch.cuda.synchronize if loaded.device.type == "cuda" else (lambda: None)
    score(loaded.model, proc, pids, audio, loaded.device, loaded.dtype, batch_size, idx=np.arange(min(n, batch_size)))
    out = {"device": loaded.device.type, "dtype": str(loaded.dtype).removeprefix("torch."),
           "weights": loaded.weights["source"], "features_clips_per_s": n / features_s}
    for b in (1, batch_size):
        sync()
        t0 = time.perf_counter()
        score(loaded.model, proc, pids, audio, loaded.device, loaded.dtype, b)
        sync()
        out[f"score_clips_per_s_batch{b}"] = n / (time.perf_counter() - t0)
    out["batched_speedup"] = out[f"score_clips_per_s_batch{batch_size}"] / out["score_clips_per_s_batch1"]
    model = lora_model(loaded.model, LlmLora(), embedded)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    tok = proc.tokenizer
    audio_id = tok.convert_tokens_to_ids(proc.audio_token)
    times = []
    for s in range(steps + 1):  # the first step warms up and is not counted
        idx = np.arange(8 * s, 8 * s + 8) % n
        b = build_batch(pids, audio, idx, audio_id, tok.pad_token_id, labels=[labels[i] for i in idx])
        lab = b.pop("labels").to(loaded.device)
        b = {k: v.to(loaded.device) for k, v in b.items()}
        b["input_features"] = b["input_features"].to(loaded.dtype)
        sync()
        t0 = time.perf_counter()
        answer_loss(model(**b).logits, lab).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if s:
            times.append(time.perf_counter() - t0)
    out["train_step_s_batch8"] = float(np.median(times))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="real Qwen2-Audio: hub id (local cache) or folder")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--load-in-4bit", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    result: dict = {"n_clips": args.n, "batch_size": args.batch_size, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = LlmModel(device="cpu")
        write_base(cfg, Path(tmp))
        result["tiny_cpu"] = measure(Path(tmp), cfg, args.n, args.batch_size, args.steps, embedded=True)
        print(f"tiny stand-in (CPU, random-init): {json.dumps(result['tiny_cpu'])}", flush=True)
    if args.model:
        cfg = LlmModel(source="pretrained", id=args.model, device=args.device, load_in_4bit=args.load_in_4bit)
        with tempfile.TemporaryDirectory() as tmp:
            write_base(cfg, Path(tmp))
            result["real"] = measure(Path(tmp), cfg, args.n, args.batch_size, args.steps, embedded=False)
        result["real"]["model"] = args.model
        print(f"{args.model}: {json.dumps(result['real'])}", flush=True)
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
