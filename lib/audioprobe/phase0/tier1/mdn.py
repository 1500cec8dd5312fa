"""Tier 1 `phase0_tier1_fit@mdn`: a mixture of diagonal Gaussians over the next-step change Δx ∈ ℝ^D.

p(Δx | context) = Σ_c π_c N(Δx; μ_c, diag(s_c²)), c = 1..C (C = 8 by default), with π, μ
and s predicted from the flattened context (W·D) by one MLP (hidden 1024, GELU). s is a
floored softplus (never a clamp), so a scale head cannot stop at a bound with zero gradient.
The baseline is one diagonal Gaussian fitted on the train Δx (per-dimension mean and std).
Both NLLs are densities on ℝ^D in nats, the same scale as the vMF × LogNormal family.

Point prediction: the mixture mean Σ_c π_c μ_c (the conditional expectation; for cosine
and rollout it is well defined even when components tie, unlike the top component's mean).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SCALE_FLOOR = 1e-3
_LOG_2PI = math.log(2.0 * math.pi)


def diag_gaussian_nll(delta: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Return −log N(Δx; mean, diag(scale²)) summed over the last axis (nats)."""
    z = (delta - mean) / scale
    return (0.5 * z * z + torch.log(scale) + 0.5 * _LOG_2PI).sum(-1)


def mixture_nll(delta: torch.Tensor, logits: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Return the per-sample NLL (n,) of a diagonal Gaussian mixture.

    delta (n, D); logits (n, C); means, scales (n, C, D).
    """
    comp = -diag_gaussian_nll(delta[:, None, :], means, scales)  # (n, C) log N per component
    return -torch.logsumexp(F.log_softmax(logits, dim=-1) + comp, dim=-1)


class MdnNet(nn.Module):
    """MLP (n_in → hidden → C·(1 + 2D), GELU) giving mixture weights, means and floored scales."""

    def __init__(self, n_in: int, dim: int, hidden: int = 1024, components: int = 8,
                 scale_floor: float = SCALE_FLOOR):
        super().__init__()
        self.dim, self.components, self.scale_floor = dim, components, scale_floor
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, components * (1 + 2 * dim)))
        with torch.no_grad():
            self.body[-1].weight.mul_(0.01)  # start near the biases: ≈ the baseline, whatever the context
        self.init_marginal(np.zeros(dim), np.ones(dim))

    @torch.no_grad()
    def init_marginal(self, mean: np.ndarray, std: np.ndarray, seed: int = 0) -> None:
        """Start every component at the train marginal (mean, std), means jittered by 0.1 std (symmetry breaking)."""
        c, d = self.components, self.dim
        g = torch.Generator().manual_seed(seed)
        bias = self.body[-1].bias
        bias[:c].zero_()
        m = torch.as_tensor(np.asarray(mean), dtype=bias.dtype)
        s = torch.as_tensor(np.maximum(np.asarray(std), 2 * self.scale_floor), dtype=bias.dtype)
        jitter = 0.1 * s * torch.randn(c, d, generator=g, dtype=bias.dtype) if c > 1 else torch.zeros(c, d)
        bias[c : c + c * d] = (m[None, :] + jitter).reshape(-1)
        raw = torch.log(torch.expm1(s - self.scale_floor))  # inverse softplus
        bias[c + c * d :] = raw[None, :].expand(c, d).reshape(-1)

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (logits (n, C), means (n, C, D), scales (n, C, D))."""
        c, d = self.components, self.dim
        out = self.body(context)
        logits = out[:, :c]
        means = out[:, c : c + c * d].reshape(-1, c, d)  # (n, C, D)
        scales = self.scale_floor + F.softplus(out[:, c + c * d :].reshape(-1, c, d))
        return logits, means, scales

    def nll(self, context: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Return the per-sample NLL (n,) of Δx on ℝ^D, nats."""
        return mixture_nll(delta, *self(context))

    def point(self, context: torch.Tensor) -> torch.Tensor:
        """Return the point prediction (n, D): the mixture mean Σ π_c μ_c."""
        return self.outputs(context, None)["point"]

    def log_magnitude(self, context: torch.Tensor) -> torch.Tensor:
        """Return the predicted log ‖Δx‖ (n,) as ½ log E‖Δx‖² = ½ log Σ_c π_c (‖μ_c‖² + Σ_d s_cd²).

        (‖mixture mean‖ would be far too small: a mean over directions shrinks towards 0.)
        """
        return self.outputs(context, None)["log_magnitude"]

    def outputs(self, context: torch.Tensor, delta: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Return {nll (when delta is given), point, log_magnitude} from one forward pass."""
        logits, means, scales = self(context)
        w = F.softmax(logits, dim=-1)  # (n, C)
        second = (means * means + scales * scales).sum(-1)  # (n, C) E‖Δx‖² per component
        out = {"point": (w[..., None] * means).sum(1),
               "log_magnitude": 0.5 * torch.log((w * second).sum(-1).clamp_min(1e-24))}
        if delta is not None:
            out["nll"] = mixture_nll(delta, logits, means, scales)
        return out


class GaussianBaseline:
    """The MDN family's baseline: one diagonal Gaussian fitted on train Δx."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.maximum(np.asarray(std, dtype=np.float64), SCALE_FLOOR)

    @classmethod
    def fit(cls, delta: np.ndarray) -> "GaussianBaseline":
        d = np.asarray(delta, dtype=np.float64)
        return cls(d.mean(0), d.std(0))

    def nll(self, delta: torch.Tensor) -> torch.Tensor:
        """Return the per-sample NLL (n,) on ℝ^D."""
        mean = torch.as_tensor(self.mean, dtype=delta.dtype, device=delta.device)
        std = torch.as_tensor(self.std, dtype=delta.dtype, device=delta.device)
        return diag_gaussian_nll(delta, mean, std)

    def state(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
