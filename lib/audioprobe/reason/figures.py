"""Charts of the reason lane: exact match by question type x arm, with 95 % bootstrap CIs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from audioprobe.runtime.atomic import atomic_file  # noqa: E402


def accuracy_by_type(table: list[dict], arms: list[str], path: str | Path, banners: list[str],
                     metric: str = "em", labels: dict[str, str] | None = None) -> None:
    """Grouped bars: `metric` per taskname (and overall) per arm, CI error bars; a dashed line per group
    for the `majority` rows of `table` when present; banners in the title; the legend names arms by
    `labels` (e.g. `htsat (random-init)`)."""
    rows = [r for r in table if r["metric"] == metric and r["group"] in ("overall", "taskname")]
    groups = ["all"] + sorted({r["value"] for r in rows if r["group"] == "taskname"})
    cell = {(r["arm"], r["value"]): r for r in rows}
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(groups) * max(1, len(arms)) / 2), 4.2))
    x = np.arange(len(groups))
    for k, arm in enumerate(arms):
        means = np.array([cell[(arm, g)]["mean"] if (arm, g) in cell else np.nan for g in groups])
        lo = np.array([cell[(arm, g)]["ci_low"] if (arm, g) in cell else np.nan for g in groups])
        hi = np.array([cell[(arm, g)]["ci_high"] if (arm, g) in cell else np.nan for g in groups])
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, means, width, label=(labels or {}).get(arm, arm),
               yerr=np.vstack([means - lo, hi - means]), capsize=2)
    maj = np.array([cell[("majority", g)]["mean"] if ("majority", g) in cell else np.nan for g in groups])
    if np.isfinite(maj).any():  # the type's train-majority answer: what the question type alone gives
        ax.hlines(maj, x - 0.42, x + 0.42, colors="black", linestyles="--", linewidth=1.2,
                  label="majority answer (train)")
    ticks = [f"{g}\n(n={cell[(arms[0], g)]['n']})" if (arms[0], g) in cell else g for g in groups]
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("exact match (normalised)" if metric == "em" else metric)
    ax.set_xlabel("question type (taskname); bars: 95 % bootstrap CI")
    title = "reason: test-split exact match by question type x arm"
    ax.set_title("\n".join([title, *banners]), fontsize=9)
    ax.legend(fontsize=8, ncols=min(len(arms) + 1, 4), loc="upper right")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
