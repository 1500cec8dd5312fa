"""Decision thresholds and temperatures fitted on dev, and the calibration metrics ECE, MCE and Brier.

Conventions: label y = 1 for SPEECH; a score s in [0, 1] is "SPEECH-ness". The decision
is SPEECH when s >= threshold. For a system whose scores are probabilities, a
temperature T rescales their logits, p = sigmoid(logit(s) / T), fitted by dev
negative log-likelihood; for other scores (fractions of frames) p = s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar

EPS = 1e-6


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of the per-class recalls (nan when a class is absent)."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    if y.all() or not y.any():
        return float("nan")
    return 0.5 * (float(pred[y].mean()) + float((~pred[~y]).mean()))


def fit_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The threshold maximising dev balanced accuracy; among ties, the middle of the best run.

    Candidates are midpoints between consecutive distinct scores plus one below the
    lowest and one above the highest, so the decision never depends on float ties.
    """
    s = np.unique(np.asarray(scores, np.float64))
    cands = np.concatenate([[s[0] - 1e-3], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-3]])
    ba = np.array([balanced_accuracy(y, scores >= c) for c in cands])
    best = np.flatnonzero(ba >= np.nanmax(ba) - 1e-12)
    return float(cands[best[len(best) // 2]])


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """T > 0 minimising the NLL of sigmoid(logit(s) / T) on dev (searched over log T in [-4, 4])."""
    z, y = logit(scores), np.asarray(y, bool)
    res = minimize_scalar(lambda lt: nll(sigmoid(z / np.exp(lt)), y), bounds=(-4.0, 4.0), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


@dataclass(frozen=True)
class Fitted:
    """Everything fixed on dev before the test split is read."""

    system: str
    score_kind: str
    threshold: float
    temperature: float | None  # None for non-probabilistic scores
    dev_bal_acc: float
    dev_n: int

    def probability(self, scores: np.ndarray) -> np.ndarray:
        if self.temperature is None:
            return np.clip(np.asarray(scores, np.float64), 0.0, 1.0)
        return sigmoid(logit(scores) / self.temperature)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) >= self.threshold

    def as_dict(self) -> dict:
        return asdict(self)


def fit_on_dev(system: str, score_kind: str, scores: np.ndarray, y: np.ndarray) -> Fitted:
    """Fit the threshold (and, for probabilities, the temperature) on dev scores and labels."""
    scores, y = np.asarray(scores, np.float64), np.asarray(y, bool)
    th = fit_threshold(scores, y)
    temp = fit_temperature(scores, y) if score_kind == "probability" else None
    return Fitted(system, score_kind, th, temp, balanced_accuracy(y, scores >= th), int(y.size))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Per bin of confidence max(p, 1-p) (equal width on [0.5, 1]): count, mean confidence, accuracy.

    The prediction is SPEECH when p >= 0.5; accuracy is the fraction of right predictions.
    Empty bins are listed with count 0 and NaN confidence and accuracy.
    """
    p, y = np.asarray(p, np.float64), np.asarray(y, bool)
    conf = np.maximum(p, 1 - p)
    right = (p >= 0.5) == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)  # 1.0 goes in the top bin
    out = []
    for b in range(bins):
        m = idx == b
        out.append({"bin": b, "lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else float("nan"),
                    "accuracy": float(right[m].mean()) if m.any() else float("nan")})
    return out


def ece_mce(p: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[float, float]:
    """Expected (count-weighted mean) and maximum |accuracy - confidence| over non-empty bins."""
    rows = [r for r in reliability(p, y, bins) if r["count"]]
    n = sum(r["count"] for r in rows)
    gaps = [abs(r["accuracy"] - r["confidence"]) for r in rows]
    return float(sum(r["count"] * g for r, g in zip(rows, gaps)) / n), float(max(gaps))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of p(SPEECH) against y in {0, 1}."""
    return float(np.mean((np.asarray(p, np.float64) - np.asarray(y, np.float64)) ** 2))
