"""One evaluation protocol for every system: fit on dev, then score the test split once.

A system is a folder `data/detect/scores/<name>/` holding `scores.parquet` (clip_id,
score in [0, 1]) and `system.json` ({system, score_kind: probability | fraction,
provenance}); nothing here knows how the scores were made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from audioprobe.detect import psychometric as psy
from audioprobe.detect.calibration import Fitted, balanced_accuracy, brier, ece_mce, fit_on_dev, reliability
from audioprobe.detect.labels import SPEECH
from audioprobe.runtime.errors import DataError
from audioprobe.metrics.classification import confusion_matrix

ROUND = 6  # digits kept in committed tables (stable across BLAS builds)


def load_system(scores_dir: Path, name: str, clips: pl.DataFrame) -> tuple[dict, pl.DataFrame]:
    """(system.json, clips joined with their `score`); every clip must have exactly one score in [0, 1]."""
    d = scores_dir / name
    meta_f, scores_f = d / "system.json", d / "scores.parquet"
    if not meta_f.is_file() or not scores_f.is_file():
        raise DataError(f"{d}: no scores.parquet + system.json for system '{name}' listed in detect.eval.systems; "
                        f"run the stage that scores it or remove it from the list")
    meta = json.loads(meta_f.read_text())
    if meta.get("score_kind") not in ("probability", "fraction"):
        raise DataError(f"{meta_f}: score_kind must be 'probability' or 'fraction', got {meta.get('score_kind')!r}")
    s = pl.read_parquet(scores_f)
    if set(s.columns) < {"clip_id", "score"} or s["clip_id"].n_unique() != s.height:
        raise DataError(f"{scores_f}: needs unique clip_id and a score column")
    bad = s.filter(~pl.col("score").is_between(0.0, 1.0) | pl.col("score").is_nan())
    if bad.height:
        raise DataError(f"{scores_f}: {bad.height} score(s) outside [0, 1], e.g. clip {bad['clip_id'][0]}")
    df = clips.join(s.select("clip_id", "score"), on="clip_id", how="left")
    missing = df.filter(pl.col("score").is_null())
    if missing.height:
        raise DataError(f"{scores_f}: no score for {missing.height} clip(s), e.g. {missing['clip_id'][0]}; rerun its stage")
    return meta, df


def fit_system(name: str, kind: str, df: pl.DataFrame) -> Fitted:
    """Fit the decision threshold (and temperature) on the dev split ONLY."""
    dev = df.filter(pl.col("split") == "dev")
    return fit_on_dev(name, kind, dev["score"].to_numpy(), (dev["label"] == SPEECH).to_numpy())


def _r(v: float) -> float:
    return round(float(v), ROUND) if np.isfinite(v) else float("nan")


def binary_metrics(y: np.ndarray, pred: np.ndarray, p: np.ndarray, bins: int) -> dict:
    """Accuracy, balanced accuracy, per-class accuracy, P/R/F1 per class, confusion counts, ECE/MCE/Brier."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    cm = confusion_matrix(y.astype(int), pred.astype(int), 2)  # rows actual (0 NONSPEECH, 1 SPEECH)
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    out = {"n": int(y.size), "n_speech": int(y.sum()), "n_nonspeech": int((~y).sum()),
           "accuracy": _r((tp + tn) / y.size), "bal_acc": _r(balanced_accuracy(y, pred)),
           "acc_speech": _r(tp / (tp + fn)) if tp + fn else float("nan"),
           "acc_nonspeech": _r(tn / (tn + fp)) if tn + fp else float("nan")}
    for cls, (t, f_pos, f_neg) in {"speech": (tp, fp, fn), "nonspeech": (tn, fn, fp)}.items():
        prec = t / (t + f_pos) if t + f_pos else float("nan")
        rec = t / (t + f_neg) if t + f_neg else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if t else (0.0 if (t + f_pos) and (t + f_neg) else float("nan"))
        out |= {f"precision_{cls}": _r(prec), f"recall_{cls}": _r(rec), f"f1_{cls}": _r(f1)}
    ece, mce = ece_mce(p, y, bins)
    out |= {"ece": _r(ece), "mce": _r(mce), "brier": _r(brier(p, y)), "tp": tp, "fn": fn, "fp": fp, "tn": tn}
    return out


def bal_acc_ci(y: np.ndarray, pred: np.ndarray, n_boot: int, ci: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile CI of balanced accuracy: a bootstrap stratified by class (each class's size kept).

    Balanced accuracy is the mean of the two recalls, so each class's clips are resampled
    within the class; (nan, nan) when a class is absent or n_boot is 0. Bounded in [0, 1].
    """
    y, right = np.asarray(y, bool), np.asarray(pred, bool) == np.asarray(y, bool)
    if n_boot == 0 or y.all() or not y.any():
        return float("nan"), float("nan")
    recalls = [right[y == c][rng.integers(0, int((y == c).sum()), size=(n_boot, int((y == c).sum())))].mean(1)
               for c in (False, True)]
    ba = (recalls[0] + recalls[1]) / 2
    lo, hi = np.quantile(ba, [(1 - ci) / 2, (1 + ci) / 2])
    return _r(lo), _r(hi)


def slices(test: pl.DataFrame) -> list[tuple[str, str, pl.Series]]:
    """(kind, value, row mask): all, per SNR, per duration, per non-speech type (all SPEECH + that type)."""
    out = [("all", "all", pl.Series([True] * test.height))]
    for snr in sorted(test["snr_db"].unique()):
        out.append(("snr_db", f"{snr:g}", test["snr_db"] == snr))
    for dur in sorted(test["duration_ms"].unique()):
        out.append(("duration_ms", str(dur), test["duration_ms"] == dur))
    for t in sorted(x for x in test["nonspeech_type"].unique() if x):
        out.append(("nonspeech_type", t, (test["label"] == SPEECH) | (test["nonspeech_type"] == t)))
    return out


def evaluate_system(name: str, meta: dict, df: pl.DataFrame, cfg, rng: np.random.Generator) -> dict:
    """Every table of one system. The test split is read here, after `fit_system` fixed everything."""
    fitted = fit_system(name, meta["score_kind"], df)
    test = df.filter(pl.col("split") == "test").sort("clip_id")
    y = (test["label"] == SPEECH).to_numpy()
    s = test["score"].to_numpy()
    p, pred = fitted.probability(s), fitted.decide(s)
    metrics = []
    # its own stream (the psychometric bootstrap's draws stay as they were), fixed per system name
    ci_rng = np.random.default_rng([cfg.seed, 31, *name.encode()])
    for kind, value, mask in slices(test):
        m = mask.to_numpy()
        row = binary_metrics(y[m], pred[m], p[m], cfg.ece_bins)
        lo, hi = bal_acc_ci(y[m], pred[m], cfg.bootstrap if kind == "all" else cfg.slice_bootstrap, cfg.ci, ci_rng)
        metrics.append({"system": name, "slice": kind, "value": value, **row, "bal_acc_lo": lo, "bal_acc_hi": hi})
    rel = [{"system": name, **{k: (_r(v) if isinstance(v, float) else v) for k, v in r.items()}}
           for r in reliability(p, y, cfg.ece_bins)]
    right = pred == y
    heat = (test.with_columns(pl.Series("error", ~right)).group_by("snr_db", "duration_ms")
            .agg(pl.col("error").mean().alias("error_rate"), pl.len().alias("n")).sort("snr_db", "duration_ms")
            .with_columns(pl.lit(name).alias("system"), pl.col("error_rate").round(ROUND)))
    conf = np.maximum(p, 1 - p)
    wrong = np.flatnonzero(~right)
    order = wrong[np.lexsort((test["clip_id"].to_numpy()[wrong], -conf[wrong]))][: cfg.confident_errors]
    errors = [{"system": name, "rank": i + 1, "clip_id": test["clip_id"][j], "label": test["label"][j],
               "predicted": SPEECH if pred[j] else "NONSPEECH", "score": _r(s[j]), "p_speech": _r(p[j]),
               "confidence": _r(conf[j]), "snr_db": test["snr_db"][j], "duration_ms": test["duration_ms"][j],
               "nonspeech_type": test["nonspeech_type"][j], "source_file": test["source_file"][j],
               "noise_file": test["noise_file"][j]} for i, j in enumerate(int(o) for o in order)]
    with threadpool_limits(1):  # thousands of tiny fits: BLAS threads only add contention
        curves, points = psychometrics(name, test, right, y, cfg, rng)
    return {"fitted": fitted, "metrics": metrics, "reliability": rel, "heatmap": heat.to_dicts(),
            "errors": errors, "curves": curves, "points": points, "y": y, "pred": pred}


AXES = {"snr": ("snr_db", "duration_ms", lambda v: float(v), "dB"),
        "duration": ("duration_ms", "snr_db", lambda v: float(np.log2(v)), "ms")}


def psychometrics(name: str, test: pl.DataFrame, right: np.ndarray, y: np.ndarray, cfg, rng) -> tuple[list, list]:
    """Fits of BA vs SNR (pooled and per duration) and vs duration (pooled and per SNR), with DT rows and points."""
    curves, points = [], []
    groups = test["source_file"].to_numpy()
    for axis, (col, other, to_x, unit) in AXES.items():
        x_all = np.array([to_x(v) for v in test[col].to_list()])
        for sl in ["pooled", *sorted(test[other].unique())]:
            m = np.ones(test.height, bool) if sl == "pooled" else (test[other] == sl).to_numpy()
            b = cfg.bootstrap if sl == "pooled" else cfg.slice_bootstrap
            row = psy.fit_with_ci(x_all[m], y[m], right[m], groups[m], max_lapse=cfg.max_lapse, bootstrap=b,
                                  ci=cfg.ci, rng=rng)
            back = (lambda v: float(2 ** v)) if axis == "duration" else (lambda v: v)
            out = {"system": name, "axis": axis, "slice": "pooled" if sl == "pooled" else f"{other}={sl:g}",
                   "bootstrap": b}
            for k, v in row.items():
                if k.startswith("dt") and not k.endswith("status") or k in ("lo", "hi", "x50"):
                    v = back(v) if np.isfinite(v) else v
                out[k] = _r(v) if isinstance(v, float) else v
            for tag in ("dt50", "dt75"):
                out[f"{tag}_text"] = psy.describe(out, tag, unit)
            curves.append(out)
            lx, ln, lk = psy.level_counts(x_all[m], y[m], right[m])
            for xv, nv, kv in zip(lx, ln, lk):
                fitted = psy.curve(xv, row["x50"], row["slope"], row["lapse"]) if row.get("status") == psy.OK else np.nan
                points.append({"system": name, "axis": axis, "slice": out["slice"], "level": _r(back(xv)),
                               "n": int(nv), "bal_acc": _r(kv / nv), "fitted": _r(fitted)})
    return curves, points
