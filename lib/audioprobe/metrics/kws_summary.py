"""The kws lane's summary across conditions and replicas: flat metrics and plot tables.

Input is one RunSummary per (condition, replica), in params order; output is what
kws_analyze writes: `metrics/kws.json` (flat dotted keys, numbers/strings/bools only)
and the rows of the CSVs under `plots/kws/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audioprobe.metrics.fire_stats import hierarchy_verdict, peak_layer
from audioprobe.metrics.seed_stats import paired_ttest, summarize

NA = "n/a"  # written where a statistic is undefined (metrics JSON never holds NaN or null)
LAYER_KEYS = ("fire_rate", "always_on", "selective", "entropy")
THRESHOLD_KEYS = ("threshold_mean", "threshold_std")
# The seed's comparison table (seed 000, text experiments): backbone, modality, metric,
# base, LIF, hierarchy. Lower val_loss is better.
SEED_TEXT_ROWS = (
    ("Transformer", "Text", "val_loss", 1.4784, 1.4673, "↑ (strong)"),
    ("CfC", "Text", "val_loss", 1.4813, 1.4804, "↑ (strong)"),
)


@dataclass(frozen=True)
class RunSummary:
    """One trained run: its result.json, per-epoch history, and per-layer organisation."""

    condition: str
    replica: int
    result: dict
    history: list[dict]  # epoch, train_loss, train_acc, val_loss, val_acc
    layers: list[dict[str, float]]  # per layer: LAYER_KEYS (+ THRESHOLD_KEYS for lif)
    thresholds: list[list[float]]  # per layer θ per unit; [] for the base condition

    @property
    def name(self) -> str:
        return f"{self.condition}-{self.replica}"


def _na(value):
    return NA if value is None else value


def conditions_of(runs: Sequence[RunSummary]) -> list[str]:
    """Conditions in first-seen order."""
    return list(dict.fromkeys(r.condition for r in runs))


def mean_profile(runs: Sequence[RunSummary], key: str) -> list[float]:
    """Per-layer mean over runs of one layer statistic."""
    return [float(np.mean([r.layers[i][key] for r in runs])) for i in range(len(runs[0].layers))]


def best_run(runs: Sequence[RunSummary]) -> RunSummary:
    """The run with the highest best-validation accuracy (first in params order on ties).

    Chosen on validation, never on test, so the confusion matrix shown is not test-selected.
    """
    return max(runs, key=lambda r: r.result["best_val_acc"])  # max keeps the first maximum


def kws_metrics(runs: Sequence[RunSummary]) -> dict:
    """Return the flat metrics of every condition, the paired t-test and the best run."""
    out: dict = {}
    by_cond = {c: [r for r in runs if r.condition == c] for c in conditions_of(runs)}
    for cond, rs in by_cond.items():
        for stat, v in summarize([r.result["test_acc"] for r in rs]).items():
            out[f"{cond}.test_acc.{stat}"] = _na(v)
        out[f"{cond}.val_acc.mean"] = float(np.mean([r.result["best_val_acc"] for r in rs]))
        for r in rs:
            p = f"{cond}.r{r.replica}"
            out[f"{p}.test_acc"] = r.result["test_acc"]
            out[f"{p}.val_acc"] = r.result["best_val_acc"]
            out[f"{p}.best_epoch"] = r.result["best_epoch"]
            out[f"{p}.torch_seed"] = r.result["torch_seed"]
            out[f"{p}.checkpoint_sha256"] = r.result["checkpoint_sha256"]
        keys = LAYER_KEYS + (THRESHOLD_KEYS if all(r.thresholds for r in rs) else ())
        for key in keys:
            for i, v in enumerate(mean_profile(rs, key)):
                out[f"{cond}.layer{i}.{key}"] = v
        entropy = mean_profile(rs, "entropy")
        verdict = hierarchy_verdict(entropy)
        out[f"{cond}.hierarchy.entropy"] = verdict
        out[f"{cond}.hierarchy.entropy_peak_layer"] = peak_layer(entropy)
        out[f"{cond}.hierarchy.entropy_replicas_agreeing"] = sum(
            hierarchy_verdict([layer["entropy"] for layer in r.layers]) == verdict for r in rs
        )
        out[f"{cond}.hierarchy.selective"] = hierarchy_verdict(mean_profile(rs, "selective"))
    if {"base", "lif"} <= by_cond.keys():
        base = {r.replica: r.result["test_acc"] for r in by_cond["base"]}
        lif = {r.replica: r.result["test_acc"] for r in by_cond["lif"]}
        paired = [k for k in base if k in lif]  # pairs share a replica (same data, same seed)
        for stat, v in paired_ttest([base[k] for k in paired], [lif[k] for k in paired]).items():
            out[f"ttest.{stat}"] = _na(v)
    best = best_run(runs)
    out["best_model.run"] = best.name
    out["best_model.val_acc"] = best.result["best_val_acc"]
    out["best_model.test_acc"] = best.result["test_acc"]
    return out


def layer_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """Per-layer profile, replica means, one row per layer with one column per condition x stat."""
    by_cond = {c: [r for r in runs if r.condition == c] for c in conditions_of(runs)}
    n_layer = len(runs[0].layers)
    rows = [{"layer": i} for i in range(n_layer)]
    for cond, rs in by_cond.items():
        keys = LAYER_KEYS + (THRESHOLD_KEYS if all(r.thresholds for r in rs) else ())
        for key in keys:
            for row, v in zip(rows, mean_profile(rs, key)):
                row[f"{cond}_{key}"] = v
    return rows


def threshold_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """Every learned θ: one row per (run, layer, unit)."""
    return [
        {"run": r.name, "layer": i, "unit": u, "threshold": th}
        for r in runs
        for i, layer in enumerate(r.thresholds)
        for u, th in enumerate(layer)
    ]


def curve_rows(run: RunSummary) -> list[dict]:
    """One run's per-epoch train/validation loss and accuracy."""
    return [{k: row[k] for k in ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")} for row in run.history]


def _hierarchy_label(verdict: str, peak: int) -> str:
    arrow = {"increasing": "↑", "decreasing": "↓"}.get(verdict)
    return f"{arrow} ({verdict})" if arrow else f"{verdict} (entropy peak at layer {peak})"


def comparison_rows(metrics: dict) -> list[dict]:
    """The seed's comparison table: its two text rows plus this run's audio row.

    change_pct = (LIF − base)/base·100; lif_gain_pct is the same change signed so that
    positive means LIF is better (lower loss, higher accuracy).
    """
    rows = []
    for backbone, modality, metric, base, lif, hierarchy in SEED_TEXT_ROWS:
        change = (lif - base) / base * 100.0
        rows.append({"row": f"{backbone} / {modality}", "backbone": backbone, "modality": modality,
                     "metric": metric, "base": base, "lif": lif, "change_pct": round(change, 2),
                     "lif_gain_pct": round(-change, 2), "hierarchy": hierarchy, "source": "seed 000 (text runs)"})
    base, lif = metrics["base.test_acc.mean"], metrics["lif.test_acc.mean"]
    change = (lif - base) / base * 100.0 if base > 0 else 0.0
    rows.append({"row": "CfC / Audio", "backbone": "CfC", "modality": "Audio", "metric": "test_accuracy",
                 "base": round(base, 4), "lif": round(lif, 4), "change_pct": round(change, 2),
                 "lif_gain_pct": round(change, 2),
                 "hierarchy": _hierarchy_label(metrics["lif.hierarchy.entropy"],
                                               metrics["lif.hierarchy.entropy_peak_layer"]),
                 "source": "this pipeline (kws_analyze)"})
    return rows
