"""Tier 1 runs: every encoder × rate (native, common) × gap k for one model family.

A representation is (encoder, rate): `native` is the encoder's own frame rate, `common` the
params' common rate reached by to_common_rate (mean pooling over whole groups of frames, per
utterance). When the native rate already equals the common rate the two are one model,
trained once; its `common` row says so (`pooling` "none (native = common)").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from audioprobe.runtime.atomic import atomic_dir
from audioprobe.parallel.device import pick_device
from audioprobe.phase0.speaker_split import SpeakerSplit, read_split
from audioprobe.phase0.summary import latents_provenance
from audioprobe.phase0.tier1.evaluate import metrics, per_sample
from audioprobe.phase0.tier1.injection import (
    MODES,
    RESETS,
    choose_utterances,
    rollout,
    start_fractions,
    start_frames,
    step_rows,
)
from audioprobe.phase0.tier1.samples import SampleSet, build_samples, load_series, pooled
from audioprobe.phase0.tier1.train import (
    TrainConfig,
    build_context_free,
    build_model,
    fit_baseline,
    init_from_baseline,
    baseline_from,
    load_checkpoint,
    save_checkpoint,
    train,
    train_deltas,
)

RATES = ("native", "common")


@dataclass
class Representation:
    """One encoder at one rate, with its samples and where it came from."""

    encoder: str
    rate: str  # native | common
    frame_rate: float
    native_rate: float
    pooling: str
    samples: SampleSet
    provenance: dict[str, Any]
    trained_as: str  # the rate whose model this row uses (common -> native when the rates match)

    @property
    def name(self) -> str:
        return f"{self.encoder}_{self.rate}"


def load_representations(root: Path, encoders: list[str], common_rate: float, split: SpeakerSplit,
                         window: int, lags: list[int], per_speaker: int, seed: int) -> list[Representation]:
    """Return every encoder's native and common-rate representation (same split, same seed)."""
    reps = []
    for enc in encoders:
        series, attrs = load_series(root / enc)  # one store per encoder under the tier1 latents root
        prov = latents_provenance(attrs)
        native = series.frame_rate
        for rate in RATES:
            same = abs(native - common_rate) < 1e-9
            target = native if rate == "native" else common_rate
            s = pooled(series, target)
            if rate == "native":
                pooling = "none"
            elif same:
                pooling = "none (native = common)"
            else:
                pooling = f"mean over groups of {native / common_rate:g} frames"
            reps.append(Representation(
                encoder=enc, rate=rate, frame_rate=float(target), native_rate=float(native), pooling=pooling,
                samples=build_samples(s, split, window, lags, per_speaker, seed), provenance=prov,
                trained_as="native" if same else rate))
    return reps


def representation_info(rep: Representation, split: SpeakerSplit) -> dict[str, Any]:
    """Return the JSON-safe description of a representation (no arrays)."""
    return {
        "encoder": rep.encoder, "rate": rep.rate, "frame_rate": rep.frame_rate, "native_rate": rep.native_rate,
        "pooling": rep.pooling, "trained_as": rep.trained_as, "dim": rep.samples.series.dim,
        "n_train": int(rep.samples.train.size), "n_eval": int(rep.samples.eval.size),
        "eval_speakers_covered": len(rep.samples.eval_speakers), "eval_speakers_total": len(split.eval_speakers),
        "provenance": rep.provenance,
    }


def fit_family(family: str, reps: list[Representation], split: SpeakerSplit, out: Path, *, window: int,
               lags: list[int], hidden: int, components: int, cfg: TrainConfig, trim: float,
               device: torch.device, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and evaluate `family` for every representation × k; write checkpoints into `out`.

    Returns {"family", "settings", "representations": [...], "rows": [one eval row per
    representation × k]} (also written to out/eval.json).
    """
    rows, infos = [], []
    trained: dict[tuple[str, str, int], dict[str, Any]] = {}
    free: dict[tuple[str, str], dict[str, Any]] = {}
    for rep in reps:
        infos.append(representation_info(rep, split))
        x = torch.as_tensor(rep.samples.series.x, device=device)
        dim = rep.samples.series.dim
        if (rep.encoder, rep.trained_as) not in free:
            free[(rep.encoder, rep.trained_as)] = _fit_context_free(
                family, rep, x, dim, hidden, components, window, lags, cfg, log)
        cf = free[(rep.encoder, rep.trained_as)]
        for k in lags:
            key = (rep.encoder, rep.trained_as, k)
            if key not in trained:
                base = fit_baseline(family, train_deltas(x, rep.samples.train))
                torch.manual_seed(cfg.seed)
                model = build_model(family, window * dim, dim, hidden, components)
                init_from_baseline(model, base, cfg.seed)
                model.to(device)
                hist = train(model, x, rep.samples.train, k, window, cfg)
                samples = per_sample(model, base, x, rep.samples.eval, k, window)
                row = {**metrics(samples, dim, trim), **context_free_metrics(samples, cf["nll"], dim, trim)}
                steps = np.linalg.norm(train_deltas(x, rep.samples.train), axis=-1)
                name = f"{rep.encoder}_{rep.trained_as}_k{k}"
                extra = {"norm.mean": rep.samples.mean, "norm.std": rep.samples.std}
                if family == "mdn":
                    extra.update({"baseline.mean": base.mean, "baseline.std": base.std})
                meta = {
                    "family": family, "encoder": rep.encoder, "rate": rep.trained_as, "k": k, "window": window,
                    "dim": dim, "n_in": window * dim, "hidden": hidden,
                    **({"components": components} if family == "mdn" else {}),
                    "frame_rate": rep.frame_rate, "baseline": base.state() if family == "vmf" else "in safetensors",
                    "typical_step": float(np.median(steps)), "train": hist, "n_train": int(rep.samples.train.size),
                    "lr": cfg.lr, "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size,
                    "grad_clip": cfg.grad_clip, "seed": cfg.seed,
                }
                save_checkpoint(out / name, model, extra, meta)
                trained[key] = {"row": row, "checkpoint": name, "steps": hist["steps"]}
                log(f"tier1_{family}: {name} trained {hist['steps']} steps "
                    f"({cfg.epochs:g} epochs), eval ΔNLL/dim {row['dnll_per_dim_mean']:+.4f} vs baseline, "
                    f"{row['dnll_ctx_per_dim_mean']:+.4f} vs context-free")
            t = trained[key]
            rows.append({"family": family, "encoder": rep.encoder, "rate": rep.rate, "k": k,
                         "frame_rate": rep.frame_rate, "dim": dim, "pooling": rep.pooling,
                         "checkpoint": t["checkpoint"], "epochs": cfg.epochs, "steps": t["steps"],
                         "n_train": int(rep.samples.train.size),
                         "eval_speakers": f"{len(rep.samples.eval_speakers)}/{len(split.eval_speakers)}",
                         **t["row"]})
    result = {"family": family,
              "settings": {"window": window, "lags": lags, "hidden": hidden,
                           **({"components": components} if family == "mdn" else {}),
                           "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
                           "weight_decay": cfg.weight_decay, "grad_clip": cfg.grad_clip, "trim": trim,
                           "seed": cfg.seed},
              "representations": infos, "rows": rows}
    (out / "eval.json").write_text(json.dumps(_rounded(result), indent=2, sort_keys=True) + "\n")
    return result


CF_K = 1  # the gap the context-free model's (ignored) context is gathered at; its targets are the same


def _fit_context_free(family: str, rep: Representation, x: torch.Tensor, dim: int, hidden: int, components: int,
                      window: int, lags: list[int], cfg: TrainConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Train the family's context-free model on the representation's train samples; return its eval NLLs.

    Same capacity, optimiser, seed, data order and passes as each conditioned model: one more
    training run per representation and family (1/len(lags) more fitting time).
    """
    base = fit_baseline(family, train_deltas(x, rep.samples.train))
    torch.manual_seed(cfg.seed)
    model = build_context_free(family, dim, hidden, components)
    init_from_baseline(model, base, cfg.seed)
    model.to(device=x.device)
    hist = train(model, x, rep.samples.train, CF_K, window, cfg)
    nll = per_sample(model, base, x, rep.samples.eval, CF_K, window)["nll"]
    log(f"tier1_{family}: {rep.encoder}_{rep.trained_as} context-free model trained {hist['steps']} steps, "
        f"eval NLL/dim {float(nll.mean()) / dim:+.4f}")
    return {"nll": nll, "steps": hist["steps"]}


def context_free_metrics(samples: dict[str, np.ndarray], cf_nll: np.ndarray, dim: int,
                         trim: float) -> dict[str, float]:
    """Return the conditioned model's ΔNLL against the context-free model of its family, on the same
    eval samples: `ctxfree_nll_*` and `dnll_ctx_{per_dim,total}_{mean,median,trim}` (negative = the
    context helps)."""
    if cf_nll.shape != samples["nll"].shape:
        raise ValueError("tier1: the context-free model was evaluated on other samples")
    m = metrics({**samples, "baseline_nll": cf_nll}, dim, trim)
    out = {k.replace("dnll_", "dnll_ctx_", 1): v for k, v in m.items() if k.startswith("dnll_")}
    out.update({k.replace("baseline_nll_", "ctxfree_nll_", 1): v for k, v in m.items()
                if k.startswith("baseline_nll_")})
    return out


def injection_utterances(reps: list[Representation], split: SpeakerSplit, n_utts: int, window: int,
                         steps: int, seed: int) -> list[str]:
    """Return the eval utterances every representation can roll out (long enough everywhere), drawn by id."""
    ok = set(split.eval_utts)
    for rep in reps:
        s = rep.samples.series
        n = np.diff(s.offsets)
        ok &= {u for u, t in zip(s.utt_ids, n) if t >= window + steps}
    return choose_utterances(sorted(ok), n_utts, seed)


def run_injection(reps: list[Representation], checkpoints: dict[str, Path], utts: list[str], *, n_starts: int,
                  steps: int, inject_every: int, device: torch.device) -> list[dict[str, Any]]:
    """Return one row per family × representation × mode × step for the k = 1 models.

    `checkpoints` maps family -> its checkpoint folder. Every model rolls out the same
    utterances, at the same fractions of their length (rate-independent start points).
    """
    rows = []
    fracs = start_fractions(n_starts)
    for family, folder in checkpoints.items():
        done: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for rep in reps:
            if (rep.encoder, rep.trained_as) in done:  # native = common: the same model on the same frames
                rows += [{**r, "rate": rep.rate} for r in done[(rep.encoder, rep.trained_as)]]
                continue
            first = len(rows)
            model, extra, meta = load_checkpoint(folder / f"{rep.encoder}_{rep.trained_as}_k1")
            model.to(device)
            base = baseline_from(meta, extra)
            s = rep.samples.series  # already standardised with the same train stats as the checkpoint
            if not np.allclose(extra["norm.mean"], rep.samples.mean):
                raise ValueError(f"{folder}: checkpoint {rep.name} was trained on other frames; rerun tier1_{family}")
            window = int(meta["window"])
            index = {u: i for i, u in enumerate(s.utt_ids)}
            truth = []
            for utt in utts:
                u = index[utt]
                frames = s.utterance(u)
                for st in start_frames(frames.shape[0], fracs, window, steps):
                    truth.append(frames[st - window : st + steps])  # (W + K, D)
            truth_t = torch.as_tensor(np.stack(truth), device=device)  # (R, W + K, D)
            for mode in MODES:
                per_step = rollout(model, base, truth_t, window, mode, inject_every, float(meta["typical_step"]))
                for r in step_rows(per_step):
                    rows.append({"family": family, "encoder": rep.encoder, "rate": rep.rate,
                                 "frame_rate": rep.frame_rate, "mode": mode, "rollouts": len(truth),
                                 "injection_resets": RESETS, **r})
            done[(rep.encoder, rep.trained_as)] = rows[first:]
    return rows


def prepare(cfg: Any, latents_root: Path, splits: Path, seed: int) -> tuple[list[Representation], SpeakerSplit,
                                                                          torch.device]:
    """Return (representations, split, device) for the phase0.tier1 params `cfg` (`cfg.threads` on CPU)."""
    split = read_split(splits)
    device = pick_device(cfg.device, "phase0.tier1.device")
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    reps = load_representations(latents_root, list(cfg.encoders), cfg.common_rate, split, cfg.window,
                                list(cfg.lags), cfg.eval_per_speaker, seed)
    return reps, split, device


def train_stage(family: str, cfg: Any, latents_root: Path, splits: Path, out: Path, seed: int,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train + evaluate `family` for every representation × k into `out` (atomically); return eval.json."""
    reps, split, device = prepare(cfg, latents_root, splits, seed)
    if family not in ("vmf", "mdn"):
        raise ValueError(f"unknown tier1 family {family!r}")
    tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                     grad_clip=cfg.grad_clip, seed=seed)
    with atomic_dir(out) as tmp:
        return fit_family(family, reps, split, tmp, window=cfg.window, lags=list(cfg.lags), hidden=cfg.hidden,
                          components=cfg.mdn_components, cfg=tc, trim=cfg.trim, device=device, log=log)


def _rounded(obj: Any) -> Any:
    """Round floats to 6 significant decimals (stable text, NaN -> None)."""
    if isinstance(obj, float):
        return None if not np.isfinite(obj) else float(f"{obj:.6g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v) for v in obj]
    return obj
