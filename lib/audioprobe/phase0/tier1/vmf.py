"""Tier 1 `phase0_tier1_fit@vmf`: a direction × magnitude model of the next-step change Δx.

Δx = m·d with d = Δx/‖Δx‖ on the unit sphere S^{D−1} and m = ‖Δx‖ > 0:

- d ~ vMF(μ_dir, κ): log p(d) = log C_D(κ) + κ μ_dirᵀd, with
  log C_D(κ) = (D/2 − 1) log κ − (D/2) log 2π − log I_{D/2−1}(κ);
- m ~ LogNormal(μ, σ): log p(m) = −log m − log σ − ½ log 2π − ½ ((log m − μ)/σ)².

That density is with respect to (surface measure × dm). On ℝ^D, dΔx = m^{D−1} dm dS,
so log p(Δx) = log p(d) + log p(m) − (D − 1) log m: every NLL here is that density on
ℝ^D, so this model, the MDN and both baselines share one scale; `per_dim` divides by D.

The origin clamped log κ and log σ hard; once a head crossed its bound the gradient was
exactly zero, both heads ended at their clamps (κ ≈ 0.135, σ = e²) and the model was
2.2 nats worse than its baseline. Here κ = κ_floor + softplus(a) and σ = σ_floor +
softplus(b): positive, floored, and differentiable everywhere; the heads' biases start
at κ = KAPPA_INIT and at the train LogNormal fit (`init_magnitude`). Point predictions
use the median magnitude exp(μ), never the mean exp(μ + σ²/2), which explodes for
large σ (the origin's rollout reached 5e13 after one step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

KAPPA_FLOOR = 1e-3
SIGMA_FLOOR = 1e-2
KAPPA_INIT = 1.0
MAG_EPS = 1e-12  # ‖Δx‖ below this is treated as this (a zero step has no direction)


def _inv_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return y + math.log(-math.expm1(-y))


def log_bessel_iv(nu: float, kappa: torch.Tensor) -> torch.Tensor:
    """Return log I_ν(κ) (modified Bessel, first kind) by Debye's uniform asymptotic expansion.

    With z = κ/ν, s = √(1 + z²), t = 1/s, η = s + log(z/(1 + s)):
    I_ν(νz) ≈ e^{νη} / (√(2πν) (1 + z²)^{1/4}) · (1 + u1(t)/ν + u2(t)/ν² + u3(t)/ν³).
    Uniform in κ (small and large) and differentiable. Absolute error in log vs scipy:
    < 2e-4 for ν >= 2.5 (D >= 7), < 1e-8 for ν >= 39 (D >= 80, every latent we use);
    ν = ½ (D = 3) uses the closed form ½ log(2/(πκ)) + log sinh κ instead.
    """
    if nu <= 0:
        raise ValueError(f"log_bessel_iv needs nu > 0, got {nu}")
    k = kappa.clamp_min(1e-30)
    if nu == 0.5:
        return 0.5 * torch.log(2.0 / (math.pi * k)) + k + torch.log(-torch.expm1(-2.0 * k)) - math.log(2.0)
    z = k / nu
    s = torch.sqrt(1.0 + z * z)
    t = 1.0 / s
    eta = s + torch.log(z / (1.0 + s))
    t2 = t * t
    u1 = t * (3.0 - 5.0 * t2) / 24.0
    u2 = t2 * (81.0 - 462.0 * t2 + 385.0 * t2 * t2) / 1152.0
    u3 = t * t2 * (30375.0 - 369603.0 * t2 + 765765.0 * t2 * t2 - 425425.0 * t2 * t2 * t2) / 414720.0
    series = 1.0 + u1 / nu + u2 / nu**2 + u3 / nu**3
    return nu * eta - 0.5 * math.log(2.0 * math.pi * nu) - 0.5 * torch.log(s) + torch.log(series)


def vmf_log_norm(kappa: torch.Tensor, dim: int) -> torch.Tensor:
    """Return log C_D(κ), the vMF normaliser on S^{D−1} (D >= 3)."""
    if dim < 3:
        raise ValueError(f"vMF here needs D >= 3, got {dim}")
    nu = dim / 2.0 - 1.0
    return nu * torch.log(kappa) - (dim / 2.0) * math.log(2.0 * math.pi) - log_bessel_iv(nu, kappa)


def log_sphere_area(dim: int) -> float:
    """Return log of the surface area of S^{D−1}: log 2 + (D/2) log π − lgamma(D/2)."""
    return math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)


def split_delta(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (direction (n, D), magnitude (n,)) of Δx (n, D)."""
    m = delta.norm(dim=-1).clamp_min(MAG_EPS)
    return delta / m[..., None], m


@dataclass
class VmfParams:
    """Predicted parameters for n samples: mu_dir (n, D) unit, kappa (n,), mu_logm (n,), sigma (n,)."""

    mu_dir: torch.Tensor
    kappa: torch.Tensor
    mu_logm: torch.Tensor
    sigma: torch.Tensor


def lognormal_nll(m: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Return −log LogNormal(m; μ, σ) per sample (density in m)."""
    z = (torch.log(m) - mu) / sigma
    return torch.log(m) + torch.log(sigma) + 0.5 * z * z + 0.5 * math.log(2.0 * math.pi)


def vmf_lognormal_nll(delta: torch.Tensor, p: VmfParams) -> dict[str, torch.Tensor]:
    """Return per-sample NLLs (nats) on ℝ^D: {total, direction, magnitude, jacobian}.

    total = direction + magnitude + jacobian, jacobian = (D − 1) log m.
    """
    d, m = split_delta(delta)
    dim = delta.shape[-1]
    direction = -(vmf_log_norm(p.kappa, dim) + p.kappa * (p.mu_dir * d).sum(-1))
    magnitude = lognormal_nll(m, p.mu_logm, p.sigma)
    jac = (dim - 1) * torch.log(m)
    return {"total": direction + magnitude + jac, "direction": direction, "magnitude": magnitude, "jacobian": jac}


def baseline_nll(delta: torch.Tensor, mu_logm: float, sigma: float) -> dict[str, torch.Tensor]:
    """Return the baseline's per-sample NLLs on ℝ^D: uniform direction + one train LogNormal."""
    d, m = split_delta(delta)
    dim = delta.shape[-1]
    direction = torch.full_like(m, log_sphere_area(dim))
    magnitude = lognormal_nll(m, torch.full_like(m, mu_logm), torch.full_like(m, sigma))
    jac = (dim - 1) * torch.log(m)
    return {"total": direction + magnitude + jac, "direction": direction, "magnitude": magnitude, "jacobian": jac}


class VmfBaseline:
    """The vMF family's baseline: uniform direction + one LogNormal fitted on train Δx."""

    def __init__(self, mu_logm: float, sigma: float):
        self.mu_logm, self.sigma = float(mu_logm), float(sigma)

    @classmethod
    def fit(cls, delta: np.ndarray) -> "VmfBaseline":
        return cls(*fit_lognormal(delta))

    def nll(self, delta: torch.Tensor) -> torch.Tensor:
        """Return the per-sample NLL (n,) on ℝ^D."""
        return baseline_nll(delta, self.mu_logm, self.sigma)["total"]

    def state(self) -> dict[str, float]:
        return {"mu_logm": self.mu_logm, "sigma": self.sigma}


def fit_lognormal(delta: np.ndarray) -> tuple[float, float]:
    """Return (μ, σ) of log ‖Δx‖ over the rows of `delta` (the baseline's magnitude fit)."""
    logm = np.log(np.maximum(np.linalg.norm(np.asarray(delta, dtype=np.float64), axis=-1), MAG_EPS))
    return float(logm.mean()), float(max(logm.std(), SIGMA_FLOOR))


class VmfLogNormalNet(nn.Module):
    """One MLP (n_in → hidden, GELU → D + 3) from the flattened context to all four parameters.

    forward(context (n, W·D)) -> VmfParams. The output row holds [direction (D), raw κ,
    μ, raw σ]; κ and σ are floored softplus outputs, so no head can get stuck at a bound
    with zero gradient. One shared hidden layer (not four separate MLPs): the parameters
    are read from one representation of the context, at a quarter of the cost.
    """

    def __init__(self, n_in: int, dim: int, hidden: int = 1024,
                 kappa_floor: float = KAPPA_FLOOR, sigma_floor: float = SIGMA_FLOOR):
        super().__init__()
        self.dim, self.kappa_floor, self.sigma_floor = dim, kappa_floor, sigma_floor
        self.trunk = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU())
        self.head = nn.Linear(hidden, dim + 3)
        with torch.no_grad():
            # Scalar outputs start near their bias (small weights), at sensible values.
            self.head.weight[dim:].mul_(0.01)
            self.head.bias[dim].fill_(_inv_softplus(KAPPA_INIT - kappa_floor))
        self.init_magnitude(0.0, 1.0)

    @torch.no_grad()
    def init_magnitude(self, mu: float, sigma: float) -> None:
        """Start the magnitude outputs at the train LogNormal fit (μ, σ)."""
        self.head.bias[self.dim + 1].fill_(mu)
        self.head.bias[self.dim + 2].fill_(_inv_softplus(max(sigma - self.sigma_floor, 1e-6)))

    def forward(self, context: torch.Tensor) -> VmfParams:
        out = self.head(self.trunk(context))  # (n, D + 3)
        direction, raw_kappa, mu_logm, raw_sigma = out.split([self.dim, 1, 1, 1], dim=-1)
        return VmfParams(
            mu_dir=F.normalize(direction, dim=-1),
            kappa=self.kappa_floor + F.softplus(raw_kappa[..., 0]),
            mu_logm=mu_logm[..., 0],
            sigma=self.sigma_floor + F.softplus(raw_sigma[..., 0]),
        )

    # The interface every Tier 1 model shares (train.py, evaluate.py, injection.py use only these).
    def nll(self, context: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Return the per-sample NLL (n,) of Δx on ℝ^D, nats."""
        return vmf_lognormal_nll(delta, self(context))["total"]

    def point(self, context: torch.Tensor) -> torch.Tensor:
        """Return the point prediction (n, D): mean direction × median magnitude exp(μ)."""
        return point_prediction(self(context))

    def log_magnitude(self, context: torch.Tensor) -> torch.Tensor:
        """Return the predicted log ‖Δx‖ (n,): the LogNormal's μ (log of the median)."""
        return self(context).mu_logm

    def outputs(self, context: torch.Tensor, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return {nll, point, log_magnitude} from one forward pass (evaluation, rollouts)."""
        p = self(context)
        return {"nll": vmf_lognormal_nll(delta, p)["total"], "point": point_prediction(p), "log_magnitude": p.mu_logm}


def point_prediction(p: VmfParams) -> torch.Tensor:
    """Return the point prediction of Δx: mean direction × median magnitude exp(μ) (never the mean)."""
    return p.mu_dir * torch.exp(p.mu_logm)[..., None]


def sample_vmf(mu: np.ndarray, kappa: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return n samples (n, D) of vMF(μ, κ) on S^{D−1} by Wood's (1994) rejection sampler."""
    mu = np.asarray(mu, dtype=np.float64)
    mu = mu / np.linalg.norm(mu)
    dim = mu.size
    b = (dim - 1) / (2.0 * kappa + math.sqrt(4.0 * kappa**2 + (dim - 1) ** 2))
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + (dim - 1) * math.log(1.0 - x0**2)
    w = np.empty(n)
    filled = 0
    while filled < n:
        k = 2 * (n - filled) + 16
        z = rng.beta((dim - 1) / 2.0, (dim - 1) / 2.0, size=k)
        ww = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        u = rng.random(k)
        ok = kappa * ww + (dim - 1) * np.log(1.0 - x0 * ww) - c >= np.log(u)
        take = ww[ok][: n - filled]
        w[filled : filled + take.size] = take
        filled += take.size
    # a uniform direction orthogonal to μ, for the tangent part
    v = rng.standard_normal((n, dim))
    v -= (v @ mu)[:, None] * mu[None, :]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return w[:, None] * mu[None, :] + np.sqrt(np.maximum(1.0 - w**2, 0.0))[:, None] * v
