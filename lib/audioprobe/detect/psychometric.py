"""Psychometric fits of balanced accuracy vs stimulus level, and the detection thresholds DT50 / DT75.

Model (Wichmann & Hill): P(x) = gamma + (1 - gamma - lam) * F(x), F(x) = sigmoid(slope * (x - x50)),
with gamma = 0.5 (chance for a balanced two-class task), lapse lam in [0, max_lapse] and
slope > 0. x is the SNR in dB, or log2 of the duration in ms. Fitted by binomial
maximum likelihood on (n_i clips, k_i = BA_i * n_i "correct") per level; on a level with
equal class counts BA equals accuracy, so k_i is the number of correct clips.

THE threshold definition (one, used everywhere): DT_p is the level where the fitted
curve has covered the fraction p of its own range above chance, F(DT_p) = p, i.e.
DT_p = x50 + logit(p) / slope. So DT50 = x50 (BA = 0.75 - lam/2) and DT75 = x50 +
ln(3)/slope (BA = 0.875 - 0.75 lam). Both lie on the rising part of the curve, where a
balanced task carries information (the origin's "accuracy = 50 %" is chance here). A
DT outside the tested range [x_min, x_max] is censored ("< x_min" / "> x_max"), never
extrapolated. 95 % CIs come from a bootstrap that resamples source files.

A curve that never rises above chance has no threshold at all, neither inside the range nor
just past it: when the fit is no better than P = 0.5 at every level (likelihood ratio test,
`rise_p` >= RISE_ALPHA) every DT is `no-rise`, not `censored-high` ("> 20 dB" would read as
"its threshold lies just past 20 dB").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import chi2

GAMMA = 0.5
LOW, HIGH, OK, NO_RISE = "censored-low", "censored-high", "ok", "no-rise"
RISE_ALPHA = 0.05
# Degrees of freedom of the likelihood ratio test of the fit against chance. Under chance the
# curve's position is not identified and its amplitude sits on a bound, so the textbook count
# (3 parameters) does not apply. Simulated on flat-at-chance data of the default design (5 SNR
# levels, 48 or 12 clips each, 400 draws), df 1 calls a rise in 6 % of the draws (the nominal
# 5 %), df 2 in 1.5 %, df 3 in 0.5 %; tests/unit/detect/test_detect_psychometric.py re-checks it.
RISE_DF = 1


def curve(x: np.ndarray, x50: float, slope: float, lapse: float) -> np.ndarray:
    """Fitted balanced accuracy at levels x."""
    return GAMMA + (1 - GAMMA - lapse) / (1 + np.exp(-slope * (np.asarray(x, np.float64) - x50)))


def _nll(theta: np.ndarray, x: np.ndarray, n: np.ndarray, k: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood and its gradient in (x50, log slope, lapse)."""
    x50, log_s, lam = theta
    s = math.exp(log_s)
    with np.errstate(over="ignore"):
        f = 1 / (1 + np.exp(-s * (x - x50)))
    p = np.clip(GAMMA + (1 - GAMMA - lam) * f, 1e-9, 1 - 1e-9)
    val = -np.sum(k * np.log(p) + (n - k) * np.log1p(-p))
    g = -(k / p - (n - k) / (1 - p))  # dNLL/dP per level
    dfd = (1 - GAMMA - lam) * f * (1 - f)
    grad = np.array([np.sum(g * dfd * -s), np.sum(g * dfd * (x - x50) * s), np.sum(g * -f)])
    return float(val), grad


def _grid_nll(x: np.ndarray, n: np.ndarray, k: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """NLL of every row (x50, log slope, lapse) of `grid` [G, 3] at once -> [G]."""
    f = 1 / (1 + np.exp(-np.exp(grid[:, 1:2]) * (x[None, :] - grid[:, 0:1])))  # [G, levels]
    p = np.clip(GAMMA + (1 - GAMMA - grid[:, 2:3]) * f, 1e-9, 1 - 1e-9)
    return -(k * np.log(p) + (n - k) * np.log1p(-p)).sum(axis=1)


@dataclass(frozen=True)
class Fit:
    x50: float
    slope: float
    lapse: float
    nll: float

    def dt(self, p: float) -> float:
        """The level where F reaches p (see the module docstring)."""
        return self.x50 + math.log(p / (1 - p)) / self.slope


def fit(x: np.ndarray, n: np.ndarray, k: np.ndarray, max_lapse: float = 0.1, start: Fit | None = None) -> Fit:
    """Binomial ML fit of (x50, slope, lapse): the best point of a grid (or `start`), polished by L-BFGS-B."""
    x, n, k = (np.asarray(a, np.float64) for a in (x, n, k))
    lo, hi = float(x.min()), float(x.max())
    span = max(hi - lo, 1e-6)
    bounds = [(lo - 3 * span, hi + 3 * span), (math.log(0.05 / span), math.log(200 / span)), (0.0, max_lapse)]
    if start is None:
        g = np.stack(np.meshgrid(np.linspace(*bounds[0], 49), np.linspace(*bounds[1], 25),
                                 np.linspace(0.0, max_lapse, 5), indexing="ij"), -1).reshape(-1, 3)  # [G, 3]
        with np.errstate(over="ignore"):
            start = g[int(np.argmin(_grid_nll(x, n, k, g)))]
    else:  # a bootstrap refit starts from the point estimate
        start = np.clip([start.x50, math.log(start.slope), start.lapse], [b[0] for b in bounds], [b[1] for b in bounds])
    res = minimize(_nll, start, args=(x, n, k), jac=True, method="L-BFGS-B", bounds=bounds)
    th = res.x if res.fun <= _nll(start, x, n, k)[0] else start
    return Fit(float(th[0]), float(math.exp(th[1])), float(th[2]), float(_nll(th, x, n, k)[0]))


def rise_pvalue(nll: float, n: np.ndarray) -> float:
    """p of the likelihood ratio test of a fit (its NLL) against P = 0.5 at every level (n clips per level)."""
    nll_chance = float(np.sum(n)) * math.log(2.0)  # k log 0.5 + (n - k) log 0.5, summed
    return float(chi2.sf(max(0.0, 2.0 * (nll_chance - nll)), RISE_DF))


def censor(value: float, lo: float, hi: float) -> tuple[float, str]:
    """(value, 'ok') inside [lo, hi]; (nan, 'censored-low' | 'censored-high') outside."""
    if value < lo - 1e-9:
        return float("nan"), LOW
    if value > hi + 1e-9:
        return float("nan"), HIGH
    return float(value), OK


def level_counts(levels: np.ndarray, y: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, n, k) per distinct level: n clips, k = balanced accuracy * n. Levels missing a class are skipped.

    `weights` (bootstrap multiplicities per clip) default to 1.
    """
    w = np.ones(len(levels)) if weights is None else np.asarray(weights, np.float64)
    xs, ns, ks = [], [], []
    for lev in np.unique(levels):
        m = levels == lev
        ws, wn = w[m & y], w[m & ~y]
        if ws.sum() == 0 or wn.sum() == 0:
            continue
        tpr = (ws * correct[m & y]).sum() / ws.sum()
        tnr = (wn * correct[m & ~y]).sum() / wn.sum()
        nn = ws.sum() + wn.sum()
        xs.append(lev)
        ns.append(nn)
        ks.append(0.5 * (tpr + tnr) * nn)
    return np.array(xs, np.float64), np.array(ns), np.array(ks)


def fit_with_ci(levels: np.ndarray, y: np.ndarray, correct: np.ndarray, groups: np.ndarray, *,
                max_lapse: float, bootstrap: int, ci: float, rng: np.random.Generator,
                ps: tuple[float, ...] = (0.5, 0.75)) -> dict:
    """Point fit and bootstrap CIs (resampling `groups`, i.e. source files) of DT_p for each p.

    Returns {x50, slope, lapse, nll, rise_p, n_levels, lo, hi, dt{P}, dt{P}_status, dt{P}_lo, dt{P}_hi,
    dt{P}_lo_status, dt{P}_hi_status} with P = 50 / 75; censored values are NaN with a status. A fit
    no better than chance (rise_p >= RISE_ALPHA) has every DT `no-rise` and its CI bounds `n/a`
    (the bootstrap still runs, so the generator moves on exactly as for any other curve).
    """
    x, n, k = level_counts(levels, y, correct)
    out: dict = {"n_levels": int(x.size), "n_clips": int(len(levels))}
    if x.size < 3:
        return out | {"status": "too few levels"}
    f = fit(x, n, k, max_lapse)
    lo, hi = float(x.min()), float(x.max())
    out |= {"x50": f.x50, "slope": f.slope, "lapse": f.lapse, "nll": f.nll, "rise_p": rise_pvalue(f.nll, n),
            "lo": lo, "hi": hi, "status": OK}
    uniq, inv = np.unique(groups, return_inverse=True)
    boot = {p: [] for p in ps}
    for _ in range(bootstrap):
        draw = rng.integers(0, uniq.size, uniq.size)
        w = np.bincount(draw, minlength=uniq.size)[inv].astype(np.float64)  # multiplicity per clip
        bx, bn, bk = level_counts(levels, y, correct, w)
        if bx.size < 3:
            continue
        bf = fit(bx, bn, bk, max_lapse, start=f)
        for p in ps:
            boot[p].append(bf.dt(p))
    a = (1 - ci) / 2
    for p in ps:
        tag = f"dt{round(p * 100)}"
        out[tag], out[f"{tag}_status"] = censor(f.dt(p), lo, hi)
        vals = np.sort(np.clip(np.array(boot[p]), lo - 1e6, hi + 1e6)) if boot[p] else np.array([])
        for side, q in (("lo", a), ("hi", 1 - a)):
            if vals.size == 0:
                out[f"{tag}_{side}"], out[f"{tag}_{side}_status"] = float("nan"), "n/a"
                continue
            v = float(np.quantile(vals, q, method="inverted_cdf"))
            out[f"{tag}_{side}"], out[f"{tag}_{side}_status"] = censor(v, lo, hi)
        if out["rise_p"] >= RISE_ALPHA:  # no threshold to place, censored or not
            out[tag], out[f"{tag}_status"] = float("nan"), NO_RISE
            for side in ("lo", "hi"):
                out[f"{tag}_{side}"], out[f"{tag}_{side}_status"] = float("nan"), "n/a"
    return out


def describe(row: dict, tag: str, unit: str, to_unit=lambda v: v) -> str:
    """'3.1 [0.2, 6.0] dB', '< -5 [< -5, -2.6] dB', '> 20 [4.7, > 20] dB' or 'no rise above chance' for one DT
    of a fit_with_ci row."""
    def one(v: float, status: str) -> str:
        if status == LOW:
            return f"< {to_unit(row['lo']):g}"
        if status == HIGH:
            return f"> {to_unit(row['hi']):g}"
        if status != OK:
            return "n/a"
        return f"{to_unit(v):.3g}"
    if row.get("status") != OK:
        return "n/a"
    if row[f"{tag}_status"] == NO_RISE:
        return "no rise above chance"
    main = one(row[tag], row[f"{tag}_status"])
    return f"{main} [{one(row[f'{tag}_lo'], row[f'{tag}_lo_status'])}, {one(row[f'{tag}_hi'], row[f'{tag}_hi_status'])}] {unit}"
