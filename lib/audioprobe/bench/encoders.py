"""Benchmark encoders batch-1 vs length-sorted padded batches; print real-time factors.

    python -m audioprobe.bench.encoders [--device cuda] [--n 16] [--batch-size 8]
                                        [--mimi-weights PATH_OR_HUB_ID] [--full-random]

Encodes the same utterances (the embedded/real LibriSpeech under data/raw if present,
else synthetic voiced waveforms of 3–12 s) with `mel`, a tiny random Mimi, the real
Mimi when weights are given, and a full-size random Mimi with --full-random (same
cost as the real one). RTF = encode seconds / audio seconds (lower is faster);
resampling is excluded. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from audioprobe.audio.resample import resample
from audioprobe.encoders import Encoder, build_encoder, pick_device


def synthetic_waves(n: int, sr: int = 16000, seed: int = 0, max_seconds: float = 12.0) -> list[np.ndarray]:
    """Voiced-like waves: a gliding harmonic tone, syllable-rate envelope, noise; 3–12 s."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(3.0, max(3.0, max_seconds)) * sr)) / sr
        f0 = 110 + 60 * rng.random() + 20 * np.sin(2 * np.pi * 0.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        tone = sum(np.sin(k * phase) / k for k in range(1, 8))
        env = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6.28)))
        waves.append((0.1 * env * tone + 0.005 * rng.standard_normal(t.size)).astype(np.float32))
    return waves


def corpus_waves(raw: Path, n: int) -> tuple[list[np.ndarray], int] | None:
    """Return up to n LibriSpeech utterances >= 3 s from a download output, or None if absent."""
    try:
        from audioprobe.data.layout import dataset_root
        from audioprobe.data.librispeech import list_utterances, load_utterance

        root = dataset_root(raw)
        waves = []
        for utt in list_utterances(root, None):
            wave, sr = load_utterance(root, utt)
            if wave.size >= 3 * sr:
                waves.append(wave)
            if len(waves) == n:
                break
        return (waves, sr) if waves else None
    except Exception:  # no download output here: fall back to synthetic audio
        return None


def _time(fns: list, repeats: int, sync) -> list[float]:
    """Median wall time of each fn; repeats interleave the fns so load changes hit all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def bench(encoder: Encoder, waves16k: list[np.ndarray], batch_size: int, repeats: int) -> dict:
    """Return RTFs batch-1 and batched, their ratio, and the largest batched-vs-single difference."""
    waves = [resample(w, 16000, encoder.sample_rate) for w in waves16k]
    seconds = sum(w.size for w in waves) / encoder.sample_rate
    order = sorted(range(len(waves)), key=lambda i: -waves[i].size)
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    dev = encoder.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    def single():
        return [encoder.encode_batch([w])[0] for w in waves]

    def batched():
        out = [None] * len(waves)
        for b in batches:
            for i, z in zip(b, encoder.encode_batch([waves[i] for i in b])):
                out[i] = z
        return out

    encoder.encode_batch(waves[:1])  # warm-up (allocators, kernels)
    t1, tb = _time([single, batched], repeats, sync)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(single(), batched()))
    return {"rtf_batch1": t1 / seconds, "rtf_batched": tb / seconds, "batched_speedup": t1 / tb,
            "max_abs_diff": diff, "audio_seconds": seconds, "weights": encoder.provenance["weights"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--n", type=int, default=16, help="utterances")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    ap.add_argument("--raw", type=Path, default=Path("data/raw/librispeech"))
    ap.add_argument("--max-seconds", type=float, default=12.0, help="synthetic lengths: 3 s to this")
    ap.add_argument("--mimi-weights", default="", help="real Mimi .safetensors path or cached hub id")
    ap.add_argument("--full-random", action="store_true",
                    help="also time a full-size random Mimi (same cost as the real one)")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    got = corpus_waves(args.raw, args.n)
    source = "librispeech" if got else "synthetic"
    waves = got[0] if got else synthetic_waves(args.n, max_seconds=args.max_seconds)
    specs = {"mel": {"name": "mel"},
             "mimi-tiny-random": {"name": "mimi", "mimi_size": "tiny", "weights": "random-init"}}
    if args.full_random:
        specs["mimi-full-random"] = {"name": "mimi", "mimi_size": "full", "weights": "random-init"}
    if args.mimi_weights:
        specs["mimi"] = {"name": "mimi", "weights": args.mimi_weights}
    print(f"{len(waves)} utterances ({source}, {sum(w.size for w in waves) / 16000:.1f} s), "
          f"batch size {args.batch_size}, device {device}, torch threads {torch.get_num_threads()}")
    results = {}
    for label, spec in specs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random-init is the point of this label
            enc = build_encoder(spec, device=device, param="--mimi-weights")
        r = bench(enc, waves, args.batch_size, args.repeats)
        results[label] = r
        print(f"{label:18s} RTF batch-1 {r['rtf_batch1']:.5f}  batched {r['rtf_batched']:.5f}  "
              f"speedup x{r['batched_speedup']:.2f}  max|diff| {r['max_abs_diff']:.2e}")
    out = {"device": str(device), "source": source, "n_utterances": len(waves),
           "batch_size": args.batch_size, "threads": torch.get_num_threads(), "encoders": results}
    print(json.dumps(out, sort_keys=True))
    return out


if __name__ == "__main__":
    main()
