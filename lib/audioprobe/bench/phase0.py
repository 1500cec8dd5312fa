"""Time phase0's conditioning fit + metrics at full scale on real-shaped frames (lane README: cost).

    python -m audioprobe.bench.phase0 [--frames 1000000] [--dim 512] [--lags 1,2,4] [--reference]

The frames are real: the LibriSpeech fixture (`--fixtures`, default ../shared/fixtures/LibriSpeech)
encoded with the lane's mel encoder (80 bands, 12.5 Hz), then tiled to `--frames` with a
per-copy perturbation (copy c ≥ 1: a per-dim gain e^{0.03·z} and offset 0.05·σ·z, new speaker
ids, utterances in a new order, and frame noise 0.03·σ), so the data keep real latents' shape:
one continuum with no well-separated clusters, on which Lloyd's iterations converge slowly.
`--dim` > 80 lifts the frames isometrically into `--dim` dims (a fixed orthonormal map, plus
noise 0.01·σ in the new dims): every distance, so every k-means iteration, is the real one, at
Mimi's width and cost. Without the fixture the bench falls back to the old synthetic generator
(sticky hidden states: its k-means converges in a few iterations, so it understates real
cost) and says so.

It times exactly what `phase0_conditioning` and `phase0_metrics` compute, for every lag and
every scheme: Δx normalisation, k-means per scheme, PCA, assignment of every frame, the
statistics pass, VR and entropy. Before timing it prints the k-means convergence on the real
fixture and on the tiled frames (iterations and the inertia curve), which is what makes the
timing honest. `--reference` also runs today's reference settings (sklearn k-means++, n_init
10, max_iter 100, tol 1e-4) on the same frames in the same process and prints the ratio.
Target on 2 cores: all three lags <= 60 s and <= 6 GB peak RSS. The last line is one JSON object.
"""

from __future__ import annotations

if __name__ == "__main__":  # the pinned numeric environment, before numpy loads (runtime.numerics)
    from audioprobe.runtime import numerics as _numerics

    _numerics.pin()

import json
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import typer

from audioprobe.phase0.conditioning import (
    KMEANS_REFERENCE,
    FitSettings,
    fit_and_assign,
    kmeans_curve,
    n_clusters,
)
from audioprobe.phase0.context import BLOCK_ROWS, gather_window_means
from audioprobe.phase0.evaluate import Assignment, MetricSettings, SplitData, evaluate_lag, slice_flags
from audioprobe.phase0.target import fit_delta_norm

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "LibriSpeech"
MEL = {"name": "mel", "mel_sample_rate": 16000, "mel_frame_rate": 12.5, "n_mels": 80}


@dataclass
class Phase0Inputs:
    """Latents plus the frames-table columns the phase0 metrics read."""

    x: np.ndarray  # (N, D) float32
    utt_offsets: np.ndarray  # (U + 1,)
    rows: np.ndarray  # target rows (sorted)
    split: np.ndarray  # (n,) str: train / heldout / eval
    speaker: np.ndarray  # (n,) int speaker index
    pos_frac: np.ndarray
    is_high_energy: np.ndarray
    source: str = "synthetic"


@dataclass
class RealFrames:
    """Real utterances' frames back to back: x (N, D), offsets (U + 1,), a speaker and energy per frame."""

    x: np.ndarray
    offsets: np.ndarray
    utt_speaker: np.ndarray  # (U,) int
    energy: np.ndarray  # (N,)
    hours: float


def encode_fixture(root: Path, min_seconds: float = 3.0, max_utterances: int = 0,
                   encoder: dict | None = None) -> RealFrames:
    """Return the LibriSpeech fixture under `root` (every subset) through the lane's mel encoder.

    Utterances shorter than `min_seconds` are skipped; `max_utterances` > 0 keeps the first
    that many (a fast test), in scan order. `encoder` (default MEL, 12.5 Hz) is the encoder
    config (bench.tier1 passes mel at another frame rate).
    """
    from audioprobe.audio.io import read_audio
    from audioprobe.audio.resample import resample
    from audioprobe.data.librispeech import scan
    from audioprobe.encoders import build_encoder
    from audioprobe.encoders.store import frame_energy

    utts, _ = scan(root, "all")
    enc = build_encoder(encoder or MEL, "cpu", param="bench")
    xs, energy, spk, seconds = [], [], [], 0.0
    for u in utts:
        wave, sr = read_audio(root / u.relpath)
        wave = resample(wave, sr, enc.sample_rate)
        if wave.shape[0] < min_seconds * enc.sample_rate:
            continue
        if max_utterances and len(xs) >= max_utterances:
            break
        z = enc.encode_batch([wave])[0]
        xs.append(z)
        energy.append(frame_energy(wave, enc.hop, z.shape[0]))
        spk.append(u.speaker)
        seconds += wave.shape[0] / enc.sample_rate
    names = {s: i for i, s in enumerate(sorted(set(spk)))}
    offsets = np.concatenate([[0], np.cumsum([z.shape[0] for z in xs])]).astype(np.int64)
    return RealFrames(np.concatenate(xs).astype(np.float32), offsets, np.array([names[s] for s in spk]),
                      np.concatenate(energy).astype(np.float32), seconds / 3600.0)


def tile(real: RealFrames, n_frames: int, dim: int, seed: int = 0, speakers: int = 0) -> RealFrames:
    """Return `real` tiled to >= n_frames (whole utterances; copy 0 is the original) and lifted to `dim`.

    Copy c >= 1 gets its own per-dim gain e^{0.03 z} and offset 0.05 σ z, frame noise 0.03 σ,
    new speaker ids and its utterances in a new order. Lifting (dim > D) multiplies by a fixed
    orthonormal (D, dim) map, which keeps every distance, and adds 0.01 σ noise.
    `speakers` > 0 caps the speaker ids at that many (id modulo the cap, never below the real
    count): a real corpus has a fixed number of speakers however many hours are read, and the
    per-speaker statistics cost in proportion to it. 0 keeps one new id set per copy.
    """
    rng = np.random.default_rng(seed)
    d0 = real.x.shape[1]
    sigma = real.x.std(axis=0).astype(np.float32)
    lengths = np.diff(real.offsets)
    n_spk = int(real.utt_speaker.max()) + 1
    copies = max(1, int(np.ceil(n_frames / real.x.shape[0])))
    cap = max(speakers, n_spk) if speakers > 0 else copies * n_spk
    q = None
    if dim > d0:
        q = np.linalg.qr(rng.standard_normal((dim, d0)))[0].T.astype(np.float32)  # (D, dim), orthonormal rows
    n_total = int(lengths.sum()) * copies
    x = np.empty((n_total, dim if q is not None else d0), dtype=np.float32)
    energy = np.empty(n_total, dtype=np.float32)
    lens, spk = [], []
    at = 0
    for c in range(copies):
        order = np.arange(lengths.size) if c == 0 else rng.permutation(lengths.size)
        gain = np.exp(0.03 * rng.standard_normal(d0)).astype(np.float32) if c else np.ones(d0, np.float32)
        shift = (0.05 * sigma * rng.standard_normal(d0)).astype(np.float32) if c else np.zeros(d0, np.float32)
        for u in order:
            a, b = real.offsets[u], real.offsets[u + 1]
            blk = real.x[a:b] * gain + shift
            if c:
                blk += (0.03 * sigma) * rng.standard_normal(blk.shape, dtype=np.float32)
            if q is not None:
                blk = blk @ q
                blk += (0.01 * float(sigma.mean())) * rng.standard_normal(blk.shape, dtype=np.float32)
            x[at : at + (b - a)] = blk
            energy[at : at + (b - a)] = real.energy[a:b]
            at += b - a
            lens.append(b - a)
            spk.append((c * n_spk + int(real.utt_speaker[u])) % cap)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return RealFrames(x, offsets, np.array(spk), energy, real.hours * copies)


def inputs_from(frames: RealFrames, window: int = 8, max_lag: int = 4, seed: int = 0,
                eval_fraction: float = 51 / 251, heldout_fraction: float = 0.1, source: str = "real") -> Phase0Inputs:
    """Return phase0 inputs for whole utterances: a speaker split, a 10 % utterance hold-out, frame attributes."""
    rng = np.random.default_rng(seed)
    lengths = np.diff(frames.offsets)
    n_utt = lengths.size
    utt_speaker = frames.utt_speaker
    speakers = rng.permutation(np.unique(utt_speaker))
    n_eval = max(1, round(eval_fraction * speakers.size))
    eval_spk = set(speakers[:n_eval].tolist())
    utt_split = np.array(["eval" if s in eval_spk else "train" for s in utt_speaker], dtype=object)
    train_utt = np.flatnonzero(utt_split == "train")
    held = rng.choice(train_utt, size=int(round(heldout_fraction * train_utt.size)), replace=False)
    utt_split[held] = "heldout"
    t0 = window - 1 + max_lag
    keep = np.maximum(lengths - t0, 0)
    u_of = np.repeat(np.arange(n_utt), keep)
    starts = np.concatenate([[0], np.cumsum(keep)[:-1]])
    t = np.arange(u_of.size) - starts[u_of] + t0
    rows = frames.offsets[u_of] + t
    split = utt_split[u_of].astype(str)
    e = frames.energy[rows]
    is_high = e > np.median(e[split == "train"])
    return Phase0Inputs(frames.x, frames.offsets, rows, split, utt_speaker[u_of],
                        (t / lengths[u_of]).astype(np.float32), is_high, source)


def synthetic_latents(
    n_frames: int, dim: int, n_speakers: int, window: int = 8, max_lag: int = 4, seed: int = 0,
    n_states: int = 48, eval_fraction: float = 51 / 251, heldout_fraction: float = 0.1,
) -> Phase0Inputs:
    """Return synthetic phase0 inputs: utterances of 60–250 frames from a sticky hidden-state chain.

    The fallback without the real fixture: well-separated states make k-means converge in a
    few iterations, far faster than on real latents.
    """
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
    stay = rng.random(n) < 0.75
    stay[offsets[:-1]] = False
    jumps = rng.integers(0, n_states, n)
    seg = np.cumsum(~stay) - 1
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
    energy = (np.abs(rng.standard_normal(n)) + (state % 3 == 0)).astype(np.float32)
    frames = RealFrames(x, offsets.astype(np.int64), utt_speaker, energy, 0.0)
    return inputs_from(frames, window, max_lag, seed, eval_fraction, heldout_fraction, source="synthetic")


SyntheticPhase0 = Phase0Inputs  # the old name


def split_data(data: Phase0Inputs, medial: tuple[float, float]) -> dict[str, SplitData]:
    """Return the per-split SplitData of the inputs (rows sorted, speaker codes)."""
    out = {}
    flags = slice_flags(data.is_high_energy, data.pos_frac, medial)
    for split in ("train", "heldout", "eval"):
        m = data.split == split
        names, codes = np.unique(data.speaker[m], return_inverse=True)
        out[split] = SplitData(data.rows[m], flags[m], codes, [str(v) for v in names])
    return out


def run_phase0(data: Phase0Inputs, lags: list[int], fit: FitSettings, metric: MetricSettings) -> dict:
    """Return {"wall": {part: s}, "cpu_seconds": s, "metrics": {lag: LagResult.metrics}, "fit": {lag: info}}.

    Parts (wall seconds, summed over lags): target_norm; k-means per scheme (mean_vq64,
    pca8_vq256), pca, pca_scores, pca8_quartile (edges), assign; stats (the pass over Δx),
    vr, entropy.
    """
    splits = split_data(data, metric.medial_pos_frac)
    wall: dict[str, float] = {}
    c0 = time.process_time()

    def add(steps: dict[str, float]) -> None:
        for part, w in steps.items():
            wall[part] = wall.get(part, 0.0) + float(w)

    t = time.perf_counter()
    mean, std = fit_delta_norm(data.x, splits["train"].rows)
    add({"target_norm": time.perf_counter() - t})
    out: dict = {"metrics": {}, "fit": {}}
    for lag in lags:
        steps: dict[str, float] = {}
        tensors, info, asg = fit_and_assign(data.x, {s: d.rows for s, d in splits.items()}, lag, fit, steps)
        add(steps)
        assignments = {sch: {sp: Assignment(*v) for sp, v in per.items()} for sch, per in asg.items()}
        msteps: dict[str, float] = {}
        result = evaluate_lag(data.x, splits, assignments, {s: n_clusters(s, fit) for s in fit.schemes},
                              mean, std, metric, lag, timings=msteps)
        add(msteps)
        out["metrics"][lag], out["fit"][lag] = result.metrics, info
    out["wall"], out["cpu_seconds"] = wall, time.process_time() - c0
    return out


def describe(fit: FitSettings) -> str:
    """One line naming the k-means settings of `fit`."""
    return (f"sklearn k-means++ n_init {fit.kmeans_n_init}, max_iter {fit.kmeans_max_iter}, "
            f"tol {fit.kmeans_tol:g}, fit samples {fit.kmeans_fit_samples}")


def convergence(x: np.ndarray, rows: np.ndarray, k: int, fit: FitSettings, lag: int = 1) -> dict:
    """Return the k-means convergence of mean-pooled contexts: reference (sklearn) and chosen fits."""
    from audioprobe.phase0.conditioning import subsample_rows

    pts = gather_window_means(x, subsample_rows(rows, fit.kmeans_fit_samples, fit.seed, lag), lag, fit.window)
    return {"reference": kmeans_curve(pts, k, replace(fit, **KMEANS_REFERENCE), fit.seed),
            "chosen": kmeans_curve(pts, k, fit, fit.seed)}


def _curve_text(c: dict) -> str:
    inertia = c["inertia"]
    marks = [1, 2, 5, 10, 20, 50, 100]
    shown = ", ".join(f"it{m} {inertia[m - 1] / inertia[-1]:.4f}" for m in marks if m <= len(inertia))
    return (f"{c['n_iter']:>3} iterations{' (cap)' if c['capped'] else ''}; inertia / final: {shown}")


app = typer.Typer(add_completion=False)


@app.command()
def main(
    frames: int = typer.Option(1_000_000, help="frames in total"),
    dim: int = typer.Option(512, help="latent dim (mel: 80; > 80 lifts the real frames isometrically; Mimi: 512)"),
    lags: str = typer.Option("1,2,4", help="context lags (phase0.context.lags)"),
    fixtures: Path = typer.Option(FIXTURES, help="LibriSpeech fixture (official layout); synthetic fallback if absent"),
    reference: bool = typer.Option(False, help="also time the reference settings (sklearn, n_init 10, max_iter 100)"),
    fixture_utterances: int = typer.Option(0, help="encode only the first N fixture utterances (0 = all; tests)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params", help="phase0.conditioning settings to time"),
    speakers: int = typer.Option(251, help="speakers in the tiled frames (train-clean-100 has 251; 0 = a new set "
                                         "per copy, ~87 x copies)"),
    seed: int = typer.Option(42),
) -> None:
    from audioprobe.runtime import params

    lag_list = [int(v) for v in lags.split(",")]
    fit = FitSettings.from_params(params.load_group("phase0.context", params_file),
                                  params.load_group("phase0.conditioning", params_file), seed)
    t = time.perf_counter()
    if fixtures.is_dir():
        real = encode_fixture(fixtures, max_utterances=fixture_utterances)
        print(f"real fixture {fixtures}: {real.x.shape[0]} mel frames ({real.hours:.2f} h, "
              f"{real.offsets.size - 1} utterances, {int(real.utt_speaker.max()) + 1} speakers)")
        small = inputs_from(real, seed=seed)
        data = inputs_from(tile(real, frames, dim, seed, speakers), seed=seed)
    else:
        print(f"NOTE: no real fixture at {fixtures}: falling back to synthetic frames (sticky hidden states); "
              "their k-means converges in a few iterations, so these timings understate real cost")
        small = None
        data = synthetic_latents(frames, dim, 251, seed=seed)
    build = time.perf_counter() - t
    print(f"built {data.x.shape[0]} {data.source} frames × {data.x.shape[1]} dims, "
          f"{len(data.utt_offsets) - 1} utterances in {build:.1f} s")
    for name, d in (("real fixture", small), (f"{data.source} {data.x.shape[0]} frames", data)):
        if d is None:
            continue
        conv = convergence(d.x, d.rows[d.split == "train"], fit.mean_vq_k, fit)
        for which in ("reference", "chosen"):
            print(f"k-means convergence, mean_vq64 lag 1, {name}, {which}: {_curve_text(conv[which])}")
    runs = {"chosen": fit}
    if reference:
        runs = {"reference": replace(fit, **KMEANS_REFERENCE), **runs}
    results = {}
    for name, settings in runs.items():
        res = run_phase0(data, lag_list, settings, MetricSettings())
        results[name] = res
        total_w = sum(res["wall"].values())
        print(f"[{name}: {describe(settings)}] lags {lag_list}: {total_w:.1f} s wall, {res['cpu_seconds']:.1f} s cpu")
        for part in res["wall"]:
            print(f"  {part:>14}: {res['wall'][part]:7.2f} s wall")
        for scheme in settings.schemes:
            ev = res["metrics"][lag_list[0]][scheme]["eval"]["all"]
            print(f"  {scheme:>14} lag {lag_list[0]}: eval vr {ev['vr']} (train means {ev['vr_train_means']}), "
                  f"entropy gain {ev['entropy_gain_nats']}, excluded {ev['excluded_mass']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    chosen = results["chosen"]
    summary = {
        "seconds": round(sum(chosen["wall"].values()), 2), "cpu_seconds": round(chosen["cpu_seconds"], 2),
        "peak_rss_mb": round(peak, 1), "build_seconds": round(build, 2),
        **{f"{k}_seconds": round(v, 2) for k, v in chosen["wall"].items()},
        "frames": int(data.x.shape[0]), "dim": int(data.x.shape[1]), "lags": lag_list, "source": data.source,
        "speakers": int(np.unique(data.speaker).size), "kmeans": describe(fit), "kmeans_fit_samples": fit.kmeans_fit_samples,
        "pca_fit_samples": fit.pca_fit_samples,
    }
    if "reference" in results:
        ref = results["reference"]
        summary["reference_seconds"] = round(sum(ref["wall"].values()), 2)
        summary["reference_cpu_seconds"] = round(ref["cpu_seconds"], 2)
        summary["speedup"] = round(summary["reference_seconds"] / max(summary["seconds"], 1e-9), 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    app()
