"""PNG figures of the kws lane: training curves, and the per-layer organisation profile."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless
import matplotlib.pyplot as plt  # noqa: E402

from audioprobe.metrics.kws_summary import RunSummary  # noqa: E402

COLORS = {"base": "tab:blue", "lif": "tab:orange"}


def curves_png(runs: Sequence[RunSummary], path: Path) -> None:
    """Loss and accuracy per epoch of every run (train dashed, validation solid)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for r in runs:
        ep = [h["epoch"] for h in r.history]
        c = COLORS.get(r.condition)
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(ep, [h[f"train_{key}"] for h in r.history], "--", color=c, alpha=0.6, lw=1)
            ax.plot(ep, [h[f"val_{key}"] for h in r.history], "-", color=c, lw=1.5,
                    label=f"{r.name} val" if key == "acc" else None)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss (train --, val —)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (train --, val —)")
    ax_acc.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=110, format="png")  # path may be an atomic temp name
    plt.close(fig)


def organisation_png(rows: Sequence[dict], thresholds: Sequence[dict], path: Path) -> None:
    """Entropy and fire rate per layer (base vs lif, replica means) and θ per layer (lif)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    layers = [r["layer"] for r in rows]
    for ax, key, label in ((axes[0], "entropy", "fire entropy (nats, 10 bins)"),
                           (axes[1], "fire_rate", "fire rate (fire > 0.5)")):
        for cond, c in COLORS.items():
            if f"{cond}_{key}" in rows[0]:
                ax.plot(layers, [r[f"{cond}_{key}"] for r in rows], "o-", color=c, label=cond)
        ax.set(xlabel="layer (shallow → deep)", ylabel=label, xticks=layers)
        ax.legend()
    by_layer = [[t["threshold"] for t in thresholds if t["layer"] == i] for i in layers]
    if any(by_layer):
        axes[2].boxplot(by_layer, positions=layers)
    axes[2].set(xlabel="layer", ylabel="learned θ = |t|·0.1", title="LIF thresholds (all lif runs)")
    fig.savefig(path, dpi=110, format="png")  # path may be an atomic temp name
    plt.close(fig)
