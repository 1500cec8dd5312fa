"""Time the phase0 fit + metrics at full scale on synthetic latents (lane README: feasibility).

    python -m audioprobe.bench.phase0 [--frames 1000000] [--dim 512] [--speakers 251] [--lag 1]

Builds `--frames` synthetic frames × `--dim` dims with utterance and speaker structure
(a sticky hidden "phone" chain per utterance, per-state means, speaker offsets, noise),
splits speakers 200/51-style with a 10 % utterance hold-out, then times exactly what the
`phase0_conditioning` and `phase0_metrics` stages compute for one lag and every scheme:
Δx normalisation, PCA / k-means / quartile fits, assignment of every frame, random
control and all metrics. Building the data is not timed. Target on 2 cores: <= 60 s and
<= 6 GB peak RSS. The last printed line is one JSON object (`seconds`, `peak_rss_mb`, ...).
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass

import numpy as np
import typer
from threadpoolctl import threadpool_limits

from audioprobe.phase0.conditioning import FitSettings, fit_and_assign, n_clusters
from audioprobe.phase0.context import BLOCK_ROWS
from audioprobe.phase0.evaluate import Assignment, MetricSettings, SplitData, evaluate_lag, slice_flags
from audioprobe.phase0.target import fit_delta_norm


@dataclass
class SyntheticPhase0:
    """Synthetic latents plus the frames-table columns the phase0 metrics read."""

    x: np.ndarray  # (N, D) float32
    utt_offsets: np.ndarray  # (U + 1,)
    rows: np.ndarray  # target rows (sorted)
    split: np.ndarray  # (n,) str: train / heldout / eval
    speaker: np.ndarray  # (n,) int speaker index
    pos_frac: np.ndarray
    is_high_energy: np.ndarray


def synthetic_latents(
    n_frames: int, dim: int, n_speakers: int, window: int = 8, max_lag: int = 4, seed: int = 0,
    n_states: int = 48, eval_fraction: float = 51 / 251, heldout_fraction: float = 0.1,
) -> SyntheticPhase0:
    """Return synthetic phase0 inputs: utterances of 60–250 frames with structured dynamics."""
    rng = np.random.default_rng(seed)
    lengths = []
    total = 0
    while total < n_frames:
        t = int(rng.integers(60, 251))
        t = min(t, n_frames - total) if n_frames - total >= window + max_lag + 2 else t
        lengths.append(t)
        total += t
    lengths_a = np.array(lengths, dtype=np.int64)
    n_utt = lengths_a.size
    offsets = np.concatenate([[0], np.cumsum(lengths_a)])
    n = int(offsets[-1])
    utt_speaker = np.sort(rng.integers(0, n_speakers, n_utt))  # speaker-major order, as LibriSpeech ids
    state_means = rng.standard_normal((n_states, dim)).astype(np.float32)
    spk_offsets = (0.5 * rng.standard_normal((n_speakers, dim))).astype(np.float32)
    # Sticky Markov chain of hidden states, one per frame (restarted at each utterance).
    stay = rng.random(n) < 0.75
    stay[offsets[:-1]] = False
    jumps = rng.integers(0, n_states, n)
    seg = np.cumsum(~stay) - 1  # segment index per frame
    state = jumps[np.flatnonzero(~stay)][seg]
    frame_speaker = np.repeat(utt_speaker, lengths_a)
    x = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, BLOCK_ROWS):
        b = min(n, a + BLOCK_ROWS)
        blk = x[a:b]
        rng.standard_normal(out=blk, dtype=np.float32)
        blk *= 0.8
        blk += state_means[state[a:b]]
        blk += spk_offsets[frame_speaker[a:b]]
    energy = np.abs(rng.standard_normal(n)).astype(np.float32) + (state % 3 == 0)

    speakers = rng.permutation(np.unique(utt_speaker))
    n_eval = max(1, round(eval_fraction * speakers.size))
    eval_spk = set(speakers[:n_eval].tolist())
    utt_split = np.array(["eval" if s in eval_spk else "train" for s in utt_speaker], dtype=object)
    train_utt = np.flatnonzero(utt_split == "train")
    held = rng.choice(train_utt, size=int(round(heldout_fraction * train_utt.size)), replace=False)
    utt_split[held] = "heldout"

    t0 = window - 1 + max_lag
    keep = np.maximum(lengths_a - t0, 0)
    u_of = np.repeat(np.arange(n_utt), keep)
    starts = np.concatenate([[0], np.cumsum(keep)[:-1]])
    t = np.arange(u_of.size) - starts[u_of] + t0
    rows = offsets[u_of] + t
    split = utt_split[u_of].astype(str)
    e = energy[rows]
    is_high = e > np.median(e[split == "train"])
    return SyntheticPhase0(x, offsets, rows, split, utt_speaker[u_of], (t / lengths_a[u_of]).astype(np.float32),
                           is_high)


def split_data(data: SyntheticPhase0, medial: tuple[float, float]) -> dict[str, SplitData]:
    """Return the per-split SplitData of synthetic inputs (rows sorted, speaker codes)."""
    out = {}
    flags = slice_flags(data.is_high_energy, data.pos_frac, medial)
    for split in ("train", "heldout", "eval"):
        m = data.split == split
        names, codes = np.unique(data.speaker[m], return_inverse=True)
        out[split] = SplitData(data.rows[m], flags[m], codes, [str(v) for v in names])
    return out


def run_phase0(data: SyntheticPhase0, lag: int, fit: FitSettings, metric: MetricSettings) -> tuple[dict, dict]:
    """Return (seconds per phase, LagResult.metrics) of the full phase0 computation for one lag."""
    splits = split_data(data, metric.medial_pos_frac)
    times, cpu = {}, {}
    t, c = time.perf_counter(), time.process_time()
    mean, std = fit_delta_norm(data.x, splits["train"].rows)
    times["target_norm"], cpu["target_norm"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    steps: dict[str, float] = {}
    tensors, info, asg = fit_and_assign(data.x, {s: d.rows for s, d in splits.items()}, lag, fit, steps)
    info = {**info, "seconds": steps}
    times["fit_assign"], cpu["fit_assign"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    assignments = {sch: {sp: Assignment(*v) for sp, v in per.items()} for sch, per in asg.items()}
    result = evaluate_lag(data.x, splits, assignments, {s: n_clusters(s, fit) for s in fit.schemes},
                          mean, std, metric, lag)
    times["metrics"], cpu["metrics"] = time.perf_counter() - t, time.process_time() - c
    return times, {"metrics": result.metrics, "fit": info, "cpu": cpu}


app = typer.Typer(add_completion=False)


@app.command()
def main(
    frames: int = typer.Option(1_000_000, help="synthetic frames in total"),
    dim: int = typer.Option(512, help="latent dim (Mimi: 512)"),
    speakers: int = typer.Option(251, help="speakers (train-clean-100: 251)"),
    lag: int = typer.Option(1),
    kmeans_fit_samples: int = typer.Option(FitSettings.kmeans_fit_samples),
    pca_fit_samples: int = typer.Option(FitSettings.pca_fit_samples),
    seed: int = typer.Option(42),
    threads: int = typer.Option(0, help="cap BLAS/OpenMP threads (0 = library default: all cores)"),
) -> None:
    if threads > 0:
        threadpool_limits(threads)
    t = time.perf_counter()
    data = synthetic_latents(frames, dim, speakers, seed=seed)
    build = time.perf_counter() - t
    print(f"built {data.x.shape[0]} frames × {dim} dims, {len(data.utt_offsets) - 1} utterances in {build:.1f} s")
    fit = FitSettings(kmeans_fit_samples=kmeans_fit_samples, pca_fit_samples=pca_fit_samples, seed=seed)
    times, out = run_phase0(data, lag, fit, MetricSettings())
    seconds = sum(times.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for k, v in times.items():
        print(f"{k:>12}: {v:6.1f} s wall, {out['cpu'][k]:6.1f} s cpu")
    print("fit steps (wall s):", json.dumps(out["fit"]["seconds"]))
    m = out["metrics"]
    for scheme in fit.schemes:
        tr, ev = m[scheme]["train"]["all"], m[scheme]["eval"]["all"]
        print(f"{scheme:>14}: vr train {tr['vr']} eval {ev['vr']} eval(train means) {ev['vr_train_means']} "
              f"random {tr['random_vr']} excluded eval {ev['excluded_mass']:.3f}")
    print(json.dumps({
        "seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1), "build_seconds": round(build, 2),
        **{f"{k}_seconds": round(v, 2) for k, v in times.items()},
        "cpu_seconds": round(sum(out["cpu"].values()), 2),
        "frames": int(data.x.shape[0]), "dim": dim, "lag": lag, "threads": threads or "default",
        "kmeans_fit_samples": out["fit"]["kmeans_fit_samples"],
        "pca_fit_samples": out["fit"].get("pca", {}).get("fit_samples", 0),
    }))


if __name__ == "__main__":
    app()
