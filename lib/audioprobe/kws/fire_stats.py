"""Organisation of LIF fire values per layer: fire rate, always-on/selective fractions,
10-bin fire entropy, and the shallow-to-deep hierarchy verdict (lane README, "Organisation metrics").

Fire tensors arrive in batches [B, T, U]; `FireCounts` accumulates per-unit counts so
the held-out set never has to sit in memory at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class FireCounts:
    """Per-unit counts over every (clip, frame) seen: values above `fire_threshold`
    and a `bins`-bin histogram of fire values on [0, 1]."""

    n_units: int
    bins: int = 10
    fire_threshold: float = 0.5

    def __post_init__(self) -> None:
        self.total = 0
        self.above = torch.zeros(self.n_units, dtype=torch.float64)
        self.hist = torch.zeros(self.n_units, self.bins, dtype=torch.float64)

    def update(self, fire: torch.Tensor) -> None:
        """Add one batch of fire values [..., U] (any leading dims: batch, time)."""
        if fire.shape[-1] != self.n_units:
            raise ValueError(f"fire has {fire.shape[-1]} units, expected {self.n_units}")
        flat = fire.detach().reshape(-1, self.n_units).to(torch.float64)  # (B*T, U)
        self.total += flat.shape[0]
        self.above += (flat > self.fire_threshold).sum(dim=0)
        # Bin i holds [i/bins, (i+1)/bins); the last bin also holds 1.0, as np.histogram does.
        idx = (flat.clamp(0.0, 1.0) * self.bins).floor().long().clamp_(max=self.bins - 1)  # (B*T, U)
        self.hist.scatter_add_(1, idx.T.contiguous(), torch.ones_like(idx.T, dtype=torch.float64))

    def unit_rates(self) -> torch.Tensor:
        """Fire rate per unit [U]: fraction of (clip, frame) values above the threshold."""
        self._check_nonempty()
        return self.above / self.total

    def unit_entropy(self) -> torch.Tensor:
        """Shannon entropy (natural log) of each unit's fire histogram [U]."""
        self._check_nonempty()
        return histogram_entropy(self.hist)

    def _check_nonempty(self) -> None:
        if self.total == 0:
            raise ValueError("no fire values were accumulated")


def histogram_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Return the natural-log entropy of each row of histogram counts [..., bins] (0·log 0 = 0)."""
    p = counts / counts.sum(dim=-1, keepdim=True)
    return -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(dim=-1)


def layer_stats(
    counts: FireCounts, always_on_rate: float = 0.95, selective_rate: float = 0.5
) -> dict[str, float]:
    """Return one layer's fire_rate, always_on, selective (fractions of units) and entropy."""
    rates = counts.unit_rates()
    return {
        "fire_rate": float(rates.mean()),
        "always_on": float((rates > always_on_rate).double().mean()),
        "selective": float((rates < selective_rate).double().mean()),
        "entropy": float(counts.unit_entropy().mean()),
    }


def threshold_stats(theta: torch.Tensor) -> dict[str, float]:
    """Return mean and (population) std of one layer's learned thresholds θ [U]."""
    theta = theta.detach().to(torch.float64)
    return {"threshold_mean": float(theta.mean()), "threshold_std": float(theta.std(unbiased=False))}


def hierarchy_verdict(profile: Sequence[float], tol: float = 1e-6) -> str:
    """Return 'increasing', 'decreasing', 'flat' or 'none' for a shallow-to-deep profile.

    A step counts as a change only when it exceeds `tol`; 'increasing' means no step
    goes down and at least one goes up. Fewer than two layers give 'n/a'.
    """
    values = [float(v) for v in profile]
    if len(values) < 2:
        return "n/a"
    steps = [b - a for a, b in zip(values, values[1:])]
    up = any(s > tol for s in steps)
    down = any(s < -tol for s in steps)
    if not up and not down:
        return "flat"
    if up and not down:
        return "increasing"
    if down and not up:
        return "decreasing"
    return "none"


def peak_layer(profile: Sequence[float]) -> int:
    """Return the index of the largest value in a per-layer profile (first on ties)."""
    values = [float(v) for v in profile]
    if not values or any(math.isnan(v) for v in values):
        raise ValueError(f"need a non-empty, NaN-free profile, got {values}")
    return max(range(len(values)), key=values.__getitem__)


@torch.no_grad()
def model_fire_counts(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int,
    bins: int = 10,
    fire_threshold: float = 0.5,
) -> list[FireCounts]:
    """Run `model` (eval mode) over clips x [N, T, F]; return one FireCounts per layer.

    The model's forward returns (logits, fires) with fires a list of [B, T, U] per layer.
    """
    was_training = model.training
    model.eval()
    counts: list[FireCounts] = []
    for start in range(0, x.shape[0], batch_size):
        _, fires = model(x[start : start + batch_size])
        if not counts:
            counts = [FireCounts(f.shape[-1], bins, fire_threshold) for f in fires]
        for c, f in zip(counts, fires):
            c.update(f)  # f: (B, T, U)
    model.train(was_training)
    return counts
