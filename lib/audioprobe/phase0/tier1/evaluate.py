"""Tier 1 evaluation on the eval speakers' sample: NLL, ΔNLL, direction cosine, log-magnitude R².

Every NLL is a density on ℝ^D in nats (the vMF family's includes the −(D − 1) log m
Jacobian), so model and baseline of either family share one scale; `_per_dim` = total / D.
ΔNLL = model NLL − baseline NLL per sample (negative = the model is better). Each
per-sample quantity is summarised by its mean, its median and its trimmed mean
(`trimmed_mean`: int(trim·n) values cut at each end, scipy.stats.trim_mean's rule): the
origin's means were dominated by a few samples (train ΔNLL +870,652 next to eval −128).

Cosine: between the model's point prediction (vMF: mean direction × median magnitude exp(μ);
MDN: the mixture mean) and the true Δx; 0 where either is the zero vector. Log-magnitude R² =
1 − Σ(ŷ − y)² / Σ(y − ȳ)², y = log ‖Δx‖ and ȳ its mean over the evaluated sample, ŷ the
model's predicted log magnitude (vMF: μ, the log of the median; MDN: ½ log E‖Δx‖²).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audioprobe.phase0.tier1.samples import gather


def trimmed_mean(values: np.ndarray, trim: float) -> float:
    """Return the mean of a 1-D array after cutting int(trim·n) values at each end.

    The rule of scipy.stats.trim_mean (a test pins the two equal); written out because
    importing scipy.stats costs 2-3 s in each of the three Tier 1 stages that summarise.
    """
    v = np.asarray(values, dtype=np.float64)
    if not 0.0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim}")
    cut = int(trim * v.size)
    return float(np.sort(v)[cut : v.size - cut].mean())


def summarise(values: np.ndarray, trim: float) -> dict[str, float]:
    """Return {mean, median, trim} of a 1-D array (NaN for an empty one)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "trim": float("nan")}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "trim": trimmed_mean(v, trim)}


def cosine(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Return the row-wise cosine of a and b (n, D); 0 where either row is ~0."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > eps) & (nb > eps)
    out = np.zeros(na.shape)
    out[ok] = (a[ok] * b[ok]).sum(-1) / (na[ok] * nb[ok])
    return out


def r_squared(pred: np.ndarray, true: np.ndarray) -> float:
    """Return 1 − SSE/SST around the true values' own mean (NaN when they are constant)."""
    y, p = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    sst = float(((y - y.mean()) ** 2).sum())
    return float("nan") if sst == 0 else 1.0 - float(((p - y) ** 2).sum()) / sst


@torch.no_grad()
def per_sample(model: Any, baseline: Any, x: torch.Tensor, t: np.ndarray, k: int, window: int,
               batch: int = 4096) -> dict[str, np.ndarray]:
    """Return per-sample arrays: nll, baseline_nll, point (n, D), delta (n, D), logm_pred."""
    out: dict[str, list] = {"nll": [], "baseline_nll": [], "point": [], "delta": [], "logm_pred": []}
    for s in range(0, int(t.size), batch):
        ctx, delta = gather(x, t[s : s + batch], k, window)
        o = model.outputs(ctx, delta)  # one forward pass
        out["nll"].append(o["nll"].double().cpu().numpy())
        out["baseline_nll"].append(baseline.nll(delta.double()).cpu().numpy())
        out["point"].append(o["point"].double().cpu().numpy())
        out["delta"].append(delta.double().cpu().numpy())
        out["logm_pred"].append(o["log_magnitude"].double().cpu().numpy())
    return {key: np.concatenate(v) for key, v in out.items()}


def metrics(samples: dict[str, np.ndarray], dim: int, trim: float) -> dict[str, float]:
    """Return the flat metric row of one model on one sample (see the module docstring)."""
    nll, base = samples["nll"], samples["baseline_nll"]
    row: dict[str, float] = {"n": int(nll.size)}
    for name, v in (("nll", nll), ("baseline_nll", base), ("dnll", nll - base)):
        for scale, vv in (("total", v), ("per_dim", v / dim)):
            for stat, value in summarise(vv, trim).items():
                row[f"{name}_{scale}_{stat}"] = value
    for stat, value in summarise(cosine(samples["point"], samples["delta"]), trim).items():
        row[f"cos_{stat}"] = value
    logm = np.log(np.maximum(np.linalg.norm(samples["delta"], axis=-1), 1e-12))
    row["logm_r2"] = r_squared(samples["logm_pred"], logm)
    return row
