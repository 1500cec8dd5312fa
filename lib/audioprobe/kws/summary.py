"""The kws lane's summary across conditions and replicas: headline values and detail tables.

Input is one RunSummary per (condition, replica), in params order. Output is what
kws_analyze writes: a handful of headline values for `metrics/kws.json` (keys without
the `kws.` prefix; `audioprobe.runtime.headline` adds it and the provenance keys) and the rows
of the detail tables under `plots/kws/`. Undefined statistics are the status string
NA, never NaN and never 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audioprobe.runtime.headline import STATUS
from audioprobe.kws.fire_stats import hierarchy_verdict, peak_layer
from audioprobe.kws.runs import RunResult, run_name
from audioprobe.metrics.seed_stats import paired_ttest, summarize

NA = STATUS["undefined"]  # "n/a"
ACC_BOUNDS = (0.0, 1.0)  # an accuracy; its CI is cut to these (metrics/seed_stats.py)
GAIN_BOUNDS = (-1.0, 1.0)  # a difference of two accuracies
LAYER_KEYS = ("fire_rate", "always_on", "selective", "entropy")
THRESHOLD_KEYS = ("threshold_mean", "threshold_std")
# The seed document's comparison table (its experiment 000, text runs): backbone,
# modality, metric, base, LIF, hierarchy. Single runs without replicas or CIs, on a
# different task and metric (lower val_loss is better): a labelled reference, never
# charted next to the measured audio rows.
SEED_TEXT_ROWS = (
    ("Transformer", "Text", "val_loss", 1.4784, 1.4673, "↑ (strong)"),
    ("CfC", "Text", "val_loss", 1.4813, 1.4804, "↑ (strong)"),
)


@dataclass(frozen=True)
class RunSummary:
    """One trained run: its result.json (audioprobe.kws.runs) and its per-layer organisation on the held-out clips."""

    condition: str
    replica: int
    result: RunResult
    layers: list[dict[str, float]]  # per layer: LAYER_KEYS (+ THRESHOLD_KEYS for lif)
    thresholds: list[list[float]]  # per layer θ per unit; [] for the base condition

    @property
    def name(self) -> str:
        return run_name(self.condition, self.replica)


def _na(value):
    return NA if value is None else value


def by_condition(runs: Sequence[RunSummary]) -> dict[str, list[RunSummary]]:
    """Runs grouped by condition, conditions in first-seen order."""
    out: dict[str, list[RunSummary]] = {}
    for r in runs:
        out.setdefault(r.condition, []).append(r)
    return out


def mean_profile(runs: Sequence[RunSummary], key: str) -> list[float]:
    """Per-layer mean over runs of one layer statistic."""
    return [float(np.mean([r.layers[i][key] for r in runs])) for i in range(len(runs[0].layers))]


def best_run(runs: Sequence[RunSummary]) -> RunSummary:
    """The run with the highest best-validation accuracy (first in params order on ties).

    Chosen on validation, never on test, so the confusion matrix shown is not test-selected.
    """
    return max(runs, key=lambda r: r.result["best_val_acc"])  # max keeps the first maximum


def lif_gain(runs: Sequence[RunSummary]) -> dict:
    """Paired LIF gain in test accuracy (lif − base, pairs share a replica = seed and data).

    Returns n_pairs, mean, ci95_low, ci95_high (t interval of the mean difference, cut to [-1, 1]),
    t_stat, p (two-sided paired t-test) and status. The mean and its CI are NA unless
    the CI is defined: with one pair, or differences constant up to rounding (whose
    sample variance is 0, not evidence of certainty), the comparison is undefined.
    """
    groups = by_condition(runs)
    base = {r.replica: r.result["test_acc"] for r in groups.get("base", [])}
    lif = {r.replica: r.result["test_acc"] for r in groups.get("lif", [])}
    pairs = [k for k in base if k in lif]
    out = {"n_pairs": len(pairs), "mean": NA, "ci95_low": NA, "ci95_high": NA, "t_stat": NA, "p": NA}
    if not pairs:
        return {**out, "status": "n/a: no replica has both conditions"}
    a, b = [base[k] for k in pairs], [lif[k] for k in pairs]
    test = paired_ttest(a, b)
    if test["status"] != "ok":
        status = test["status"]
        if len(pairs) == 1:
            status = "n/a: 1 replica per condition; the comparison is undefined"
        return {**out, "status": status}
    diff = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    s = summarize(diff, bounds=GAIN_BOUNDS)
    return {**out, "mean": s["mean"], "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"],
            "t_stat": test["t_stat"], "p": test["p_value"], "status": "ok"}


def combined_checkpoint_sha256(runs: Sequence[RunSummary]) -> str:
    """One sha256 over every run's name and checkpoint sha256 (names the set of weights)."""
    lines = "".join(f"{r.name}\t{r.result['checkpoint_sha256']}\n" for r in sorted(runs, key=lambda r: r.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def headline_values(runs: Sequence[RunSummary], *, chance_acc: float, n_test: int) -> dict:
    """Return the kws headline numbers (unprefixed keys; 19 values, plus 3 provenance keys
    added by audioprobe.runtime.headline)."""
    groups = by_condition(runs)
    out: dict = {}
    for cond in ("base", "lif"):
        s = summarize([r.result["test_acc"] for r in groups[cond]], bounds=ACC_BOUNDS)
        for stat in ("mean", "ci95_low", "ci95_high"):
            out[f"{cond}.test_acc.{stat}"] = _na(s[stat])
    gain = lif_gain(runs)
    for stat in ("mean", "ci95_low", "ci95_high"):
        out[f"lif_gain.{stat}"] = gain[stat]
    out["ttest.p"] = gain["p"]
    lif = groups["lif"]
    entropy = mean_profile(lif, "entropy")
    out["hierarchy"] = hierarchy_verdict(entropy)
    out["lif.entropy.peak_layer"] = peak_layer(entropy)
    out["lif.entropy.peak"] = max(entropy)
    out["lif.fire_rate.mean"] = float(np.mean(mean_profile(lif, "fire_rate")))
    out["lif.threshold.mean"] = float(np.mean([t for r in lif for layer in r.thresholds for t in layer]))
    out["replicas"] = len(groups["lif"])
    out["best_epoch.max"] = max(r.result["best_epoch"] for r in runs)
    out["epochs"] = max(r.result["epochs"] for r in runs)  # epochs run (a plateau stop may end a run early)
    # runs whose best validation epoch is their last: still improving when training ended (0 is the aim)
    out["runs_best_at_last_epoch"] = sum(r.result["best_epoch"] == r.result["epochs"] for r in runs)
    out["chance_acc"] = chance_acc
    out["n_test"] = n_test
    return out


def run_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """One row per run: seeds, best epoch, accuracies, checkpoint hash."""
    keys = ("torch_seed", "epochs", "stop", "best_epoch", "best_val_acc", "test_acc", "test_loss", "n_params",
            "checkpoint_sha256")
    return [{"run": r.name, "condition": r.condition, "replica": r.replica, **{k: r.result[k] for k in keys}}
            for r in runs]


def condition_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """Test accuracy per condition across replicas: n, mean, std, 95 % CI cut to [0, 1] (NA when undefined)."""
    rows = []
    for cond, rs in by_condition(runs).items():
        s = summarize([r.result["test_acc"] for r in rs], bounds=ACC_BOUNDS)
        rows.append({"condition": cond, **{k: _na(v) for k, v in s.items()},
                     "best_val_acc_mean": float(np.mean([r.result["best_val_acc"] for r in rs]))})
    return rows


def layer_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """Per-layer profile, replica means, long format: one row per (condition, layer)."""
    rows = []
    for cond, rs in by_condition(runs).items():
        profiles = {key: mean_profile(rs, key) for key in LAYER_KEYS}
        for i in range(len(rs[0].layers)):
            rows.append({"condition": cond, "layer": i, **{k: profiles[k][i] for k in LAYER_KEYS}, "runs": len(rs)})
    return rows


def layer_run_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """Per-layer statistics of every run (thresholds NA for the base condition)."""
    return [{"run": r.name, "condition": r.condition, "replica": r.replica, "layer": i,
             **{k: layer[k] for k in LAYER_KEYS}, **{k: layer.get(k, NA) for k in THRESHOLD_KEYS},
             "entropy_hierarchy": hierarchy_verdict([x["entropy"] for x in r.layers])}
            for r in runs for i, layer in enumerate(r.layers)]


def threshold_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """Every learned θ: one row per (run, layer, unit)."""
    return [
        {"run": r.name, "layer": i, "unit": u, "threshold": th}
        for r in runs
        for i, layer in enumerate(r.thresholds)
        for u, th in enumerate(layer)
    ]


def comparison_rows(runs: Sequence[RunSummary]) -> list[dict]:
    """The measured base-vs-LIF comparison: means, the paired gain with its CI, the t-test.

    The gain is never shown without its CI: when the CI is undefined (one replica,
    constant differences) gain and CI are NA and `status` says why.
    """
    groups = by_condition(runs)
    gain = lif_gain(runs)
    entropy = mean_profile(groups["lif"], "entropy")
    return [{
        "row": "CfC / Audio (this pipeline)", "metric": "test_acc",
        "base_mean": float(np.mean([r.result["test_acc"] for r in groups["base"]])),
        "lif_mean": float(np.mean([r.result["test_acc"] for r in groups["lif"]])),
        "n_pairs": gain["n_pairs"], "gain": gain["mean"], "gain_ci95_low": gain["ci95_low"],
        "gain_ci95_high": gain["ci95_high"], "t_stat": gain["t_stat"], "p": gain["p"],
        "status": gain["status"],
        "hierarchy": hierarchy_verdict(entropy), "entropy_peak_layer": peak_layer(entropy),
    }]


def seed_reference_rows() -> list[dict]:
    """The seed document's two text rows, labelled as a reference (single runs, no CI).

    change_pct = (LIF − base)/base·100; lif_gain_pct is the same change signed so that
    positive means LIF is better (lower loss).
    """
    rows = []
    for backbone, modality, metric, base, lif, hierarchy in SEED_TEXT_ROWS:
        change = (lif - base) / base * 100.0
        rows.append({"row": f"{backbone} / {modality}", "metric": metric, "base": base, "lif": lif,
                     "change_pct": round(change, 2), "lif_gain_pct": round(-change, 2), "hierarchy": hierarchy,
                     "source": "seed document, experiment 000 (text, single runs, no CI): reference only"})
    return rows


def confusion_rows(actual: Sequence[str], predicted: Sequence[str], words: Sequence[str]) -> list[dict]:
    """Square confusion counts over every class: one row per (actual, predicted) word pair,
    zeros included, so the chart shows all classes on both axes."""
    idx = {w: i for i, w in enumerate(words)}
    n = len(words)
    counts = np.zeros((n, n), dtype=np.int64)  # (actual, predicted)
    np.add.at(counts, ([idx[a] for a in actual], [idx[p] for p in predicted]), 1)
    return [{"actual": a, "predicted": p, "count": int(counts[i, j])}
            for i, a in enumerate(words) for j, p in enumerate(words)]


def per_class_rows(actual: Sequence[str], predicted: Sequence[str], words: Sequence[str]) -> list[dict]:
    """Recall per actual class (NA for a class with no test clip)."""
    rows = []
    for w in words:
        support = sum(a == w for a in actual)
        correct = sum(a == w and p == w for a, p in zip(actual, predicted))
        rows.append({"word": w, "support": support, "correct": correct,
                     "accuracy": correct / support if support else NA})
    return rows
