"""Tier 1 dev-NLL curves and training cost: how many passes, which batch, seconds per million frames.

    python -m audioprobe.bench.tier1 [--passes 12] [--batch-sizes 256,1024] [--lags 1,8] [--families vmf,mdn]

The frames are real: the LibriSpeech fixture (`--fixtures`, default ../shared/fixtures/LibriSpeech)
encoded with the lane's mel encoder (bench.phase0.encode_fixture, 80 bands) at `--rate` Hz
(default 12.5, phase0.tier1.common_rate; 50 is the tier-1 mel native rate). They are split by
speaker into train and dev: `--dev-fraction` of the frames, whole speakers drawn at random
(seeded) — a bench-only split, unrelated to the pipeline's eval speakers. Frames are
standardised with the train frames' stats and targets are built exactly as the pipeline does
(samples.standardise, samples.target_rows with t >= W - 1 + max(lags)).

For each family × batch size × gap k it trains with the pipeline's own code — train.train
(AdamW over globally shuffled samples, seeded), build_model + init_from_baseline as in
pipeline.fit_family — for `--passes` passes in one call, and after every pass computes the
dev NLL: the mean per sample of evaluate.per_sample's `nll` (nats on ℝ^D, the pipeline's
eval NLL). The pass boundary is observed by a thin wrapper around the model (`PassProbe`)
that sees every batch train() feeds it; train.py itself is untouched, so the DVC stages
are too. Evaluation time is excluded from the training time.

"Flat" (`flat_at_pass`): the first pass p after which the best dev NLL of the next
`--patience` passes improves on the best so far by less than `--rel-tol` × |best| (a rise
counts as flat). None when the curve was still improving, or when fewer than `patience`
passes followed p (cannot tell). Cost: train samples visited per second of training wall
time -> seconds per million frames (one sample = one target frame), on `--threads` torch
threads (default 1), plus peak RSS. The last line is one JSON object with every figure.
"""

from __future__ import annotations

if __name__ == "__main__":  # the pinned numeric environment, before numpy loads (runtime.numerics)
    from audioprobe.runtime import numerics as _numerics

    _numerics.pin()

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer

from audioprobe.bench.phase0 import FIXTURES, MEL, RealFrames, encode_fixture
from audioprobe.phase0.tier1.evaluate import per_sample
from audioprobe.phase0.tier1.samples import Series, standardise, target_rows
from audioprobe.phase0.tier1.train import (
    TrainConfig,
    build_model,
    fit_baseline,
    init_from_baseline,
    train,
    train_deltas,
)


@dataclass
class BenchData:
    """Standardised frames and the bench's train / dev target rows."""

    x: torch.Tensor  # (N, D) float32, standardised with the train frames' stats
    train: np.ndarray  # global target rows of train-speaker utterances
    dev: np.ndarray  # global target rows of dev-speaker utterances
    dev_speakers: int
    train_speakers: int
    frames: int

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])


def speaker_split(utt_speaker: np.ndarray, lengths: np.ndarray, dev_fraction: float, seed: int) -> np.ndarray:
    """Return a boolean dev mask over utterances: whole speakers, drawn at random, until >= dev_fraction of frames.

    At least one speaker is dev and at least one stays train.
    """
    speakers = np.unique(utt_speaker)
    if speakers.size < 2:
        raise ValueError("tier1 bench: a speaker split needs at least 2 speakers")
    order = np.random.default_rng(seed).permutation(speakers)
    total, dev, chosen = float(lengths.sum()), 0.0, []
    for s in order[:-1]:
        chosen.append(s)
        dev += float(lengths[utt_speaker == s].sum())
        if dev >= dev_fraction * total:
            break
    return np.isin(utt_speaker, chosen)


def prepare(frames: RealFrames, window: int, max_lag: int, dev_fraction: float, seed: int) -> BenchData:
    """Return the bench data of `frames`: speaker split, train-stat standardisation, pipeline targets."""
    lengths = np.diff(frames.offsets)
    dev_mask = speaker_split(frames.utt_speaker, lengths, dev_fraction, seed)
    n_utt = lengths.size
    series = Series(np.asarray(frames.x, np.float32), frames.offsets, [str(u) for u in range(n_utt)],
                    [str(s) for s in frames.utt_speaker], 0.0)
    std_series, _, _ = standardise(series, ~dev_mask)
    train_rows = target_rows(frames.offsets, ~dev_mask, window, max_lag)
    dev_rows = target_rows(frames.offsets, dev_mask, window, max_lag)
    if train_rows.size == 0 or dev_rows.size == 0:
        raise ValueError("tier1 bench: no train or no dev target; lower --window or --lags")
    return BenchData(torch.as_tensor(std_series.x), train_rows, dev_rows,
                     int(np.unique(frames.utt_speaker[dev_mask]).size),
                     int(np.unique(frames.utt_speaker[~dev_mask]).size), int(frames.x.shape[0]))


class PassProbe(torch.nn.Module):
    """The model as train() sees it, calling `on_pass(p)` when pass p (1-based) has ended.

    train() calls `nll` once per batch; the probe counts the samples it has been fed, and when
    a new batch starts at a multiple of n (the train samples per pass) the previous pass's last
    optimiser step is done, so it evaluates there (and `finish()` evaluates the last pass).
    Its parameters are the wrapped model's, in the same order: the optimiser, the seeds and the
    data order are exactly those of training the bare model.
    """

    def __init__(self, net: torch.nn.Module, n: int, on_pass: Callable[[int], None]):
        super().__init__()
        self.net, self.n, self.on_pass = net, int(n), on_pass
        self.seen, self.done = 0, 0

    def _maybe_report(self) -> None:
        passes = self.seen // self.n
        if passes > self.done:
            self.done = passes
            was = self.net.training
            self.net.eval()
            self.on_pass(passes)
            self.net.train(was)

    def nll(self, context: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        self._maybe_report()
        self.seen += int(delta.shape[0])
        return self.net.nll(context, delta)

    def finish(self) -> None:
        self._maybe_report()


def dev_nll(model: torch.nn.Module, baseline: Any, data: BenchData, k: int, window: int) -> tuple[float, float]:
    """Return (model, baseline) mean dev NLL per sample, nats on ℝ^D (evaluate.per_sample's `nll`)."""
    s = per_sample(model, baseline, data.x, data.dev, k, window)
    return float(s["nll"].mean()), float(s["baseline_nll"].mean())


def flat_at_pass(values: list[float], rel_tol: float = 0.005, patience: int = 2) -> int | None:
    """Return the 1-based pass p where the dev NLL stops improving, or None.

    p is the first pass such that min(values[p : p + patience]) (the next `patience` passes) is
    not below best(values[:p]) − rel_tol·|best(values[:p])|. None when no such p is followed by
    `patience` passes (the curve was still improving, or too few passes to tell).
    """
    v = [float(a) for a in values]
    for p in range(1, len(v) - patience + 1):
        best = min(v[:p])
        if min(v[p : p + patience]) > best - rel_tol * abs(best):
            return p
    return None


def run_setting(family: str, data: BenchData, k: int, window: int, hidden: int, components: int,
                cfg: TrainConfig, passes: int, rel_tol: float = 0.005, patience: int = 2,
                log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train one family at one setting for `passes` passes; return the dev NLL per pass and the cost."""
    base = fit_baseline(family, train_deltas(data.x, data.train))
    torch.manual_seed(cfg.seed)  # as pipeline.fit_family
    model = build_model(family, window * data.dim, data.dim, hidden, components)
    init_from_baseline(model, base, cfg.seed)
    curve: list[float] = []
    eval_seconds = [0.0]
    base_nll = [float("nan")]

    def on_pass(p: int) -> None:
        t = time.perf_counter()
        nll, base_nll[0] = dev_nll(model, base, data, k, window)
        curve.append(nll)
        eval_seconds[0] += time.perf_counter() - t
        if log:
            log(f"  {family} batch {cfg.batch_size} k {k} pass {p}: dev NLL {nll:.4f} ({nll / data.dim:+.4f}/dim)")

    probe = PassProbe(model, data.train.size, on_pass)
    t0, c0 = time.perf_counter(), time.process_time()
    hist = train(probe, data.x, data.train, k, window, replace(cfg, epochs=float(passes)))
    probe.finish()
    wall = time.perf_counter() - t0 - eval_seconds[0]
    cpu = time.process_time() - c0
    visits = int(data.train.size) * passes
    flat = flat_at_pass(curve, rel_tol, patience)
    best = int(np.argmin(curve)) + 1
    return {
        "family": family, "batch_size": cfg.batch_size, "lr": cfg.lr, "k": k, "passes": passes,
        "steps": hist["steps"], "train_loss_per_pass": hist["loss_per_epoch"],
        "dev_nll_per_pass": [round(v, 5) for v in curve],
        "dev_nll_per_dim_per_pass": [round(v / data.dim, 6) for v in curve],
        "dev_baseline_nll": round(base_nll[0], 5), "flat_at_pass": flat, "best_pass": best,
        "train_seconds": round(wall, 3), "eval_seconds": round(eval_seconds[0], 3),
        "cpu_seconds_incl_eval": round(cpu, 3), "train_samples_visited": visits,
        "s_per_million_frames": round(wall / visits * 1e6, 1),
    }


def warm_up() -> None:
    """One untimed AdamW step on a tiny model: the first optimiser step imports torch._dynamo (~1.6 s)."""
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.zeros(1, 2)).sum().backward()
    opt.step()


def table(results: list[dict[str, Any]], dim: int) -> str:
    """Return the dev NLL per pass (nats per dim) of every setting, one row per setting."""
    n = max(len(r["dev_nll_per_pass"]) for r in results)
    head = "| family | batch | k | base | " + " | ".join(f"pass {p}" for p in range(1, n + 1)) + \
           " | flat at | best | s / M frames |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        cells = [f"{v / dim:+.4f}" for v in r["dev_nll_per_pass"]] + [""] * (n - len(r["dev_nll_per_pass"]))
        flat = r["flat_at_pass"] if r["flat_at_pass"] is not None else f"not flat in {r['passes']}"
        lines.append(f"| {r['family']} | {r['batch_size']} | {r['k']} | {r['dev_baseline_nll'] / dim:+.4f} | "
                     + " | ".join(cells) + f" | {flat} | {r['best_pass']} | {r['s_per_million_frames']:.0f} |")
    return "\n".join(lines)


def synthetic_frames(n_utt: int, length: int, dim: int, n_speakers: int, seed: int = 0) -> RealFrames:
    """Return small random-walk frames with a speaker per utterance (tests; no fixture needed)."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(0.3 * rng.standard_normal((n_utt * length, dim)), axis=0).astype(np.float32)
    offsets = np.arange(0, n_utt * length + 1, length, dtype=np.int64)
    spk = np.arange(n_utt) % n_speakers
    return RealFrames(x, offsets, spk, np.ones(n_utt * length, np.float32), 0.0)


app = typer.Typer(add_completion=False)


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


@app.command()
def main(
    passes: int = typer.Option(12, help="passes over the train samples per setting (dev NLL after each)"),
    families: str = typer.Option("vmf,mdn", help="tier1 families"),
    batch_sizes: str = typer.Option("256,1024", help="batch sizes to compare"),
    lags: str = typer.Option("1,8", help="gaps k (targets use t >= W - 1 + max(k), as the pipeline)"),
    long_lag_batches: str = typer.Option("256", help="batch sizes also run at k > 1 (the rest: k = 1 only)"),
    lr: float = typer.Option(1e-3),
    rate: float = typer.Option(12.5, help="mel frame rate, Hz (12.5 = tier1 common rate, 50 = mel native)"),
    dev_fraction: float = typer.Option(0.15, help="dev share of frames, whole speakers"),
    rel_tol: float = typer.Option(0.005, help="'flat': next passes improve the best dev NLL by < rel_tol·|best|"),
    patience: int = typer.Option(2, help="passes that must fail to improve"),
    hidden: int = typer.Option(1024), components: int = typer.Option(8), window: int = typer.Option(8),
    threads: int = typer.Option(1, help="torch threads"),
    fixtures: Path = typer.Option(FIXTURES, help="LibriSpeech fixture (official layout)"),
    fixture_utterances: int = typer.Option(0, help="encode only the first N fixture utterances (0 = all)"),
    synthetic: int = typer.Option(0, help="> 0: that many synthetic random-walk utterances instead (tests)"),
    seed: int = typer.Option(0),
) -> None:
    torch.set_num_threads(threads)
    t = time.perf_counter()
    if synthetic:
        frames, source = synthetic_frames(synthetic, 60, 8, max(2, synthetic // 2), seed), "synthetic"
    elif fixtures.is_dir():
        frames = encode_fixture(fixtures, max_utterances=fixture_utterances, encoder={**MEL, "mel_frame_rate": rate})
        source = f"LibriSpeech fixture {fixtures} (mel {rate:g} Hz)"
    else:
        raise typer.BadParameter(f"no fixture at {fixtures}; pass --fixtures or --synthetic N")
    lag_list = _ints(lags)
    data = prepare(frames, window, max(lag_list), dev_fraction, seed)
    print(f"{source}: {data.frames} frames × {data.dim} dims, {frames.offsets.size - 1} utterances "
          f"({frames.hours:.2f} h), built in {time.perf_counter() - t:.1f} s; train {data.train.size} samples "
          f"({data.train_speakers} speakers), dev {data.dev.size} samples ({data.dev_speakers} speakers); "
          f"{threads} torch thread(s)")
    warm_up()
    results = []
    long_b = set(_ints(long_lag_batches))
    for family in [f.strip() for f in families.split(",") if f.strip()]:
        for b in _ints(batch_sizes):
            for k in lag_list:
                if k != lag_list[0] and b not in long_b:
                    continue
                cfg = TrainConfig(epochs=float(passes), batch_size=b, lr=lr, seed=seed)
                r = run_setting(family, data, k, window, hidden, components, cfg, passes, rel_tol, patience, print)
                print(f"{family} batch {b} k {k}: flat at pass {r['flat_at_pass']}, best pass {r['best_pass']}, "
                      f"{r['train_seconds']:.1f} s training -> {r['s_per_million_frames']:.0f} s per M frames",
                      flush=True)
                results.append(r)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\ndev NLL per sample / dim (nats), dev = {data.dev.size} samples of {data.dev_speakers} held-out "
          f"speakers; base = the family's baseline; flat = next {patience} passes improve < {rel_tol:g}·|best|")
    print(table(results, data.dim))
    print(f"peak RSS {peak:.0f} MB")
    summary = {
        "source": "synthetic" if synthetic else "fixture", "frame_rate": rate, "frames": data.frames,
        "dim": data.dim, "train_samples": int(data.train.size), "dev_samples": int(data.dev.size),
        "dev_speakers": data.dev_speakers, "threads": threads, "hidden": hidden, "window": window,
        "passes": passes, "rel_tol": rel_tol, "patience": patience, "peak_rss_mb": round(peak, 1),
        "results": {f"{r['family']}_b{r['batch_size']}_k{r['k']}": r for r in results},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    app()
