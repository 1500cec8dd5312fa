"""Time the pinned numeric environment against each library's native choice, in one run.

    python -m audioprobe.bench.numerics [--repeats 3] [--workloads kws,phase0,reason]

Three workloads, each the inner loop of a lane at its embedded-default shapes, each run in a
fresh process (the kernels are chosen when a library loads, so a process can only ever
have one environment): `kws` (training steps of the kws net, `kws.model` of params.yaml,
batch 64), `phase0` (the conditioning fit of every scheme at lag 1 on 100 k synthetic
64-dim frames: PCA, k-means, assignment), `reason` (mapper training steps over the frozen
embedded LM on mel-shaped prefixes). Modes alternate pinned / native within each repeat so
drift in the machine's speed hits both alike; each figure is the median over repeats and
the ratio is native / pinned time (above 1: pinning is faster). `native` removes the
pinned variables from the child's environment. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKLOADS = ("kws", "phase0", "reason")


def _kws(steps: int = 30) -> float:
    import torch

    from audioprobe.runtime import params
    from audioprobe.kws.net import build_kws_net, param_groups

    cfg = params.load_group("kws.model")
    torch.manual_seed(0)
    net = build_kws_net(cfg, "lif", n_classes=35)
    opt = torch.optim.AdamW(param_groups(net, 0.01), lr=1e-3)
    x = torch.randn(64, 25, cfg.n_mels)  # (B, T, n_mels): 1 s at the embedded 40 ms hop
    y = torch.randint(0, 35, (64,))
    loss_fn = torch.nn.CrossEntropyLoss()
    t = 0.0
    for i in range(steps + 3):  # 3 warm-up steps
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x)[0], y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        t += (time.perf_counter() - t0) if i >= 3 else 0.0
    return t


def _phase0() -> float:
    from audioprobe.bench.phase0 import synthetic_latents
    from audioprobe.phase0.conditioning import FitSettings, fit_and_assign

    data = synthetic_latents(100_000, 64, 48, seed=0)
    rows = {s: data.rows[data.split == s] for s in ("train", "heldout", "eval")}
    t0 = time.perf_counter()
    fit_and_assign(data.x, rows, 1, FitSettings(seed=0), {})
    return time.perf_counter() - t0


def _reason() -> float:
    from audioprobe.bench import reason

    t0 = time.perf_counter()
    reason.main(["--steps", "20", "--encoders", "mel", "--max-new-tokens", "1", "--threads", "2"])
    return time.perf_counter() - t0


def worker(name: str, mode: str) -> None:
    """Pin (or not) before any numeric import, run one workload, print its seconds as JSON."""
    from audioprobe.runtime import numerics

    numerics.pin(mode)
    seconds = {"kws": _kws, "phase0": _phase0, "reason": _reason}[name]()
    import torch

    print(json.dumps({"seconds": seconds, "isa": torch.backends.cpu.get_cpu_capability()}))


def _child(name: str, mode: str) -> dict:
    from audioprobe.runtime.numerics import PINNED_ENV

    env = {k: v for k, v in os.environ.items() if mode == "pinned" or k not in PINNED_ENV}
    out = subprocess.run([sys.executable, "-m", "audioprobe.bench.numerics", "--worker", name, "--mode", mode],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--worker", choices=WORKLOADS, help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=("pinned", "native"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.mode)
        return {}
    result: dict = {}
    for name in args.workloads.split(","):
        runs: dict[str, list[float]] = {"pinned": [], "native": []}
        isa = {}
        for _ in range(args.repeats):
            for mode in ("pinned", "native"):
                rec = _child(name, mode)
                runs[mode].append(rec["seconds"])
                isa[mode] = rec["isa"]
        med = {m: statistics.median(v) for m, v in runs.items()}
        result[name] = {"pinned_s": round(med["pinned"], 3), "native_s": round(med["native"], 3),
                        "native_over_pinned": round(med["native"] / med["pinned"], 3),
                        "isa_pinned": isa["pinned"], "isa_native": isa["native"]}
        print(f"{name:>7}: pinned {med['pinned']:.2f} s ({isa['pinned']}), native {med['native']:.2f} s "
              f"({isa['native']}), native/pinned {med['native'] / med['pinned']:.3f} "
              f"(runs: pinned {[round(v, 2) for v in runs['pinned']]}, native {[round(v, 2) for v in runs['native']]})",
              flush=True)
    print(json.dumps({"repeats": args.repeats, **result}, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
