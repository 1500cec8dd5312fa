"""Tier 1 rollout / injection diagnostic: how far a k = 1 model drifts when it feeds itself.

A rollout starts at frame s of an eval utterance with the W true frames x[s−W … s−1] as its
window and predicts K steps. Step j predicts Δ̂ from the current window (the model's point
prediction), sets x̂[s+j] = window[-1] + Δ̂ and slides the window on by x̂[s+j]. Modes:

- A teacher forcing: the window is the ground truth before every step;
- B injection every `inject_every` steps: before steps j = n, 2n, ... the window is reset;
- C injection after step 1 only: reset once, before step j = 1; free afterwards;
- D free rollout: never reset.

A reset replaces the WHOLE window (all W frames) with the ground truth; the origin replaced
only the newest frame, so its "recovery" still ran on W − 1 predicted frames. Per step:
ΔNLL per dim of the true Δx given the current window (model − baseline), direction cosine
of Δ̂ and Δx, magnitude ratio ‖Δ̂‖/‖Δx‖, and the state error ‖x̂ − x‖ divided by the median
train ‖Δx‖ of that representation (raw errors are not comparable across representations).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MODES = ("A", "B", "C", "D")
MODE_NAMES = {"A": "teacher forcing", "B": "injection every n steps", "C": "injection after step 1",
              "D": "free rollout"}
RESETS = "full_window"  # what a ground-truth injection replaces (recorded in every output)


def resets_before(mode: str, step: int, inject_every: int) -> bool:
    """True when mode resets the whole window to the ground truth before predicting `step` (0-based)."""
    if mode == "A":
        return True
    if mode == "B":
        return step > 0 and step % inject_every == 0
    if mode == "C":
        return step == 1
    if mode == "D":
        return False
    raise ValueError(f"unknown injection mode {mode!r} (one of {MODES})")


def choose_utterances(eval_utts: list[str], n: int, seed: int) -> list[str]:
    """Return n eligible eval utterance ids (sorted), drawn by id with the seed: the same for every model."""
    ids = sorted(eval_utts)
    if len(ids) <= n:
        return ids
    rng = np.random.default_rng(seed)
    return sorted(ids[i] for i in rng.choice(len(ids), n, replace=False))


def start_fractions(n_starts: int) -> np.ndarray:
    """Return the start points as fractions of the usable range, (j + 0.5) / n (rate-independent)."""
    return (np.arange(n_starts) + 0.5) / n_starts


def start_frames(n_frames: int, fractions: np.ndarray, window: int, steps: int) -> np.ndarray:
    """Return the first predicted frame s of each start: W ≤ s ≤ T − K, spread by `fractions`."""
    span = n_frames - steps - window
    if span < 0:
        raise ValueError(f"an utterance of {n_frames} frames is too short for window {window} + {steps} steps")
    return window + np.floor(fractions * (span + 1)).astype(np.int64).clip(0, span)


@torch.no_grad()
def rollout(model: Any, baseline: Any, truth: torch.Tensor, window: int, mode: str,
            inject_every: int, scale: float) -> dict[str, np.ndarray]:
    """Return per-step arrays (K, R): dnll_per_dim, cos, mag_ratio, state_err (÷ scale).

    truth: (R, W + K, D), the true frames x[s − W … s + K − 1] of R rollouts.
    """
    r, length, dim = truth.shape
    steps = length - window
    state = truth.clone()  # (R, W + K, D); positions ≥ W are overwritten by predictions
    out = {k: np.zeros((steps, r)) for k in ("dnll_per_dim", "cos", "mag_ratio", "state_err")}
    for j in range(steps):
        if resets_before(mode, j, inject_every):
            state[:, j : j + window] = truth[:, j : j + window]  # the whole window, not the newest frame
        win = state[:, j : j + window]  # (R, W, D)
        ctx = win.reshape(r, window * dim)
        true_delta = truth[:, window + j] - truth[:, window + j - 1]
        o = model.outputs(ctx, true_delta)  # one forward pass: point prediction and NLL of the truth
        pred = o["point"]  # (R, D)
        x_hat = win[:, -1] + pred
        state[:, window + j] = x_hat
        nll = o["nll"] - baseline.nll(true_delta.double()).to(true_delta.dtype)
        out["dnll_per_dim"][j] = (nll / dim).double().cpu().numpy()
        pn, tn = pred.norm(dim=-1), true_delta.norm(dim=-1)
        ok = (pn > 1e-12) & (tn > 1e-12)
        cos = torch.where(ok, (pred * true_delta).sum(-1) / (pn * tn).clamp_min(1e-24), torch.zeros_like(pn))
        out["cos"][j] = cos.double().cpu().numpy()
        out["mag_ratio"][j] = (pn / tn.clamp_min(1e-12)).double().cpu().numpy()
        out["state_err"][j] = ((x_hat - truth[:, window + j]).norm(dim=-1) / scale).double().cpu().numpy()
    return out


def step_rows(per_step: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """Return one row per step (1-based): finite rollouts, and each metric's mean and median over the finite ones."""
    steps = next(iter(per_step.values())).shape[0]
    rows = []
    for j in range(steps):
        # rollouts whose state is still finite (a diverging free rollout can overflow)
        row: dict[str, float] = {"step": j + 1, "finite": int(np.isfinite(per_step["state_err"][j]).sum())}
        for name, v in per_step.items():
            vals = v[j][np.isfinite(v[j])]
            row[f"{name}_mean"] = float(vals.mean()) if vals.size else float("nan")
            row[f"{name}_median"] = float(np.median(vals)) if vals.size else float("nan")
        rows.append(row)
    return rows
