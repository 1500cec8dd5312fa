"""Time one training step (forward + backward, no optimizer) of each recurrent layer in one run.

    python -m audioprobe.bench.cfc [--steps 15] [--batch 64] [--seq 100] [--threads N] [--device cuda]

Layers, all input 128 -> 192 units at the origin's shapes: ncps CfC with AutoNCP(192, 128)
wiring, ncps dense CfC(128, 192, proj_size=128), our FastCfC twins of both (weights copied
from the ncps modules), nn.LSTM and nn.GRU. Each step feeds a fresh-graph input that
requires grad (in the kws net the CfC input is a LayerNorm output) and backpropagates a
fixed random cotangent. The layers are timed round-robin, one step each per round after
`--warmup` rounds, so machine noise hits all of them alike; the figure is the median.

Threads: `torch.set_num_threads(--threads)` before anything runs; the default is the
number of CPUs this process may use (2 on the dev box; the feasibility figures quoted in
the kws README are at 2 threads). The last printed line is one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable

import torch
import typer
from ncps.torch import CfC
from ncps.wirings import AutoNCP
from torch import nn

from audioprobe.cells.cfc import FastCfC

INPUT = 128
UNITS = 192


def _step_fn(module: nn.Module, x: torch.Tensor, cotangent: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_(True)
        out = module(xi)[0]
        out.backward(cotangent)

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(steps: int, batch: int, seq: int, threads: int, device: str, warmup: int) -> dict:
    """Return the median ms per training step of each layer plus the speedups."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    torch.manual_seed(0)
    ncps_wired = CfC(INPUT, AutoNCP(UNITS, INPUT), batch_first=True, return_sequences=True).to(dev)
    ncps_dense = CfC(INPUT, UNITS, proj_size=INPUT, batch_first=True, return_sequences=True).to(dev)
    layers: dict[str, nn.Module] = {
        "ncps_wired": ncps_wired,
        "ncps_dense": ncps_dense,
        "fast_wired": FastCfC.from_ncps(ncps_wired),
        "fast_dense": FastCfC.from_ncps(ncps_dense),
        "lstm": nn.LSTM(INPUT, UNITS, batch_first=True).to(dev),
        "gru": nn.GRU(INPUT, UNITS, batch_first=True).to(dev),
    }
    x = torch.randn(batch, seq, INPUT, device=dev)
    steps_fn = {}
    for name, module in layers.items():
        with torch.no_grad():
            out_dim = module(x)[0].shape[-1]
        steps_fn[name] = _step_fn(module, x, torch.randn(batch, seq, out_dim, device=dev))
    times: dict[str, list[float]] = {name: [] for name in layers}
    for rnd in range(warmup + steps):
        for name, step in steps_fn.items():
            _sync(dev)
            t0 = time.perf_counter()
            step()
            _sync(dev)
            if rnd >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    ms = {name: statistics.median(v) for name, v in times.items()}
    result: dict = {
        "device": dev.type,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "seq": seq,
        "input": INPUT,
        "units": UNITS,
        "steps": steps,
    }
    result.update({f"{name}_ms": round(v, 2) for name, v in ms.items()})
    result["speedup_wired"] = round(ms["ncps_wired"] / ms["fast_wired"], 2)
    result["speedup_dense"] = round(ms["ncps_dense"] / ms["fast_dense"], 2)
    return result


def main(
    steps: int = typer.Option(15, min=1, help="timed steps per layer (median)"),
    batch: int = typer.Option(64, min=1),
    seq: int = typer.Option(100, min=1),
    threads: int = typer.Option(0, min=0, help="torch.set_num_threads; 0 = CPUs available to this process"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    warmup: int = typer.Option(3, min=0, help="untimed rounds first"),
) -> None:
    """Print ms per training step for each layer, then one JSON line with all figures."""
    if threads == 0:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    res = run(steps, batch, seq, threads, device, warmup)
    print(
        f"train step (fwd+bwd), batch {batch}, T {seq}, {INPUT} in, {UNITS} units, "
        f"{res['threads']} threads, {res['device']}, median of {steps}"
    )
    for name in ("ncps_wired", "ncps_dense", "fast_wired", "fast_dense", "lstm", "gru"):
        print(f"  {name:<11} {res[name + '_ms']:8.2f} ms")
    print(f"  speedup wired {res['speedup_wired']:.2f}x, dense {res['speedup_dense']:.2f}x")
    print(json.dumps(res))


if __name__ == "__main__":
    typer.run(main)
