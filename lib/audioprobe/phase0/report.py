"""phase0 report: the decision matrix as text with a templated verdict, and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audioprobe.atomic import atomic_file
from audioprobe.phase0.decision import DecisionRule, criteria

ORIGIN = ("Origin (real Mimi latents, LibriSpeech train-clean-100): FAIL - VR 0.997 for mean_vq64 "
          "(random 0.999), 0.988 for pca8_vq256 (random 0.995).")


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _threshold_text(op: str, value: float | None, flag_at: Any = None) -> str:
    if op == "false":
        return f"<= {flag_at:.0%} (flag)" if isinstance(flag_at, float) else "not flagged"
    if op == "abs1<=":
        return f"|v-1| <= {value:g}"
    return f"{op} {value:g}"


def render_report(metrics: dict[str, Any], decision: dict[str, Any], schemes: list[str], rule: DecisionRule) -> str:
    """Return report.txt: provenance, a random-init WARNING when relevant, the matrix, a verdict."""
    lag = rule.lag
    lines = ["phase0 - is there reusable structure in codec latent dynamics?", "=" * 64]
    if metrics.get("latents.random_init"):
        lines += ["",
                  "WARNING: the latents come from an encoder with RANDOM weights (random-init).",
                  "WARNING: these numbers describe an untrained network, not the codec; do not publish them.",
                  ""]
    prov = {k.removeprefix("latents."): v for k, v in metrics.items() if k.startswith("latents.")}
    lines.append(f"encoder: {prov.get('encoder')}  weights: {prov.get('provenance.weights', 'n/a')}  "
                 f"sha256: {prov.get('provenance.sha256', 'n/a')}")
    lines.append(f"data: {prov.get('data.source', 'n/a')}  sha256: {prov.get('data.sha256', 'n/a')}  "
                 f"dim {prov.get('dim')} at {prov.get('frame_rate')} Hz")
    lines.append("rows: " + ", ".join(f"{s} {metrics.get(f'rows.{s}', 0)} ({metrics.get(f'speakers.{s}', 0)} speakers)"
                                      for s in ("train", "heldout", "eval")))
    lines.append(f"context: window {metrics.get('window')}, lags {metrics.get('lags')}; decision at lag {lag}; "
                 f"seed {metrics.get('seed')}")
    lines += ["", f"Decision matrix (lag {lag}; VR = origin definition, cluster means re-estimated per set)", ""]
    width = 14
    head = f"{'criterion':<28}{'threshold':<16}" + "".join(f"{s:>{width}}" for s in schemes)
    lines += [head, "-" * len(head)]
    for c in criteria(rule):
        thr = getattr(rule, c.threshold) if c.threshold else None
        cells = []
        for s in schemes:
            v = decision.get(f"{s}.{c.name}_value")
            mark = "" if decision.get(f"{s}.{c.name}") else " x"
            cells.append(f"{_fmt(v) + mark:>{width}}")
        thr_text = _threshold_text(c.op, thr, metrics.get("settings.excluded_mass_flag"))
        lines.append(f"{c.label:<28}{thr_text:<16}" + "".join(cells))
    lines.append(f"{'scheme passes':<44}" + "".join(f"{_fmt(decision.get(f'{s}.pass')):>{width}}" for s in schemes))
    lines.append("(x = criterion not met; n/a = undefined, e.g. every sample excluded: counts as not met)")

    lines += ["", f"Supporting numbers (lag {lag})", ""]
    rows = [
        ("eval VR around train means", "eval.all.vr_train_means"),
        ("heldout VR (same speakers)", "heldout.all.vr"),
        ("random control, expected eval", "eval.all.random_vr_expected"),
        ("excluded mass train", "train.all.excluded_mass"),
        ("excluded mass eval", "eval.all.excluded_mass"),
        ("effective clusters", "k_effective"),
        ("clusters (K)", "k"),
        ("entropy H eval", "eval.all.entropy_h"),
        ("entropy H_cond eval", "eval.all.entropy_h_cond"),
        ("entropy reduction eval", "eval.all.entropy_reduction"),
        ("entropy red. nats/dim eval", "eval.all.entropy_reduction_nats"),
        ("speaker VR eval mean", "eval.all.speaker_vr_mean"),
        ("speaker VR eval std", "eval.all.speaker_vr_std"),
        ("speaker VR(train means) eval", "eval.all.speaker_vr_train_means_mean"),
    ]
    for label, key in rows:
        lines.append(f"{label:<44}" + "".join(f"{_fmt(metrics.get(f'lag{lag}.{s}.{key}')):>{width}}" for s in schemes))
    flagged = [s for s in schemes if any(metrics.get(f"lag{lag}.{s}.{split}.all.excluded_flag")
                                         for split in ("train", "eval"))]
    if flagged:
        lines.append(f"FLAG: excluded mass above {metrics.get('settings.excluded_mass_flag', 0.1):.0%} for "
                     f"{', '.join(flagged)} (clusters with < {metrics.get('settings.min_cluster_train_samples')} "
                     "train samples are excluded from every VR)")
    lines += ["", "Verdict", "", verdict(metrics, decision, schemes, rule), "", ORIGIN, ""]
    return "\n".join(lines)


def verdict(metrics: dict[str, Any], decision: dict[str, Any], schemes: list[str], rule: DecisionRule) -> str:
    """Return the short templated verdict sentence(s)."""
    lag = rule.lag
    evals = [(s, metrics.get(f"lag{lag}.{s}.eval.all.vr")) for s in schemes]
    defined = [(s, v) for s, v in evals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    warn = (" Latents from a RANDOM-INIT encoder: this verdict says nothing about the trained codec."
            if metrics.get("latents.random_init") else "")
    if decision.get("pass"):
        names = decision.get("passing_schemes", "")
        best = min(defined, key=lambda t: t[1])
        return (f"PASS at lag {lag}: {names} meet every criterion; the best eval VR is {best[1]:.3f} ({best[0]}), "
                f"so coarse context clusters explain {1 - best[1]:.0%} of next-step variance on held-out "
                f"speakers. Proceed to Phase 1 (minimal Engram modelling).{warn}")
    if not defined:
        return (f"FAIL at lag {lag}: no scheme has a defined eval VR (every sample excluded or no eval "
                f"speakers); there is no evidence of structure.{warn}")
    best = min(defined, key=lambda t: t[1])
    rnd = metrics.get(f"lag{lag}.{best[0]}.eval.all.random_vr")
    rnd_txt = f" vs {rnd:.3f} for its random control" if isinstance(rnd, float) else ""
    return (f"FAIL at lag {lag}: no conditioning scheme meets every criterion. The lowest eval VR is "
            f"{best[1]:.3f} ({best[0]}){rnd_txt}: coarse context clusters explain {max(0.0, 1 - best[1]):.1%} "
            f"of next-step variance (the rule needs > {1 - rule.vr_max:.0%}). A valid negative result: "
            f"these latent dynamics show no reusable lookup structure at this granularity.{warn}")


# ----------------------------------------------------------------------------- plots
def _grid(n: int):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(n, 1), figsize=(4.2 * max(n, 1), 3.6), squeeze=False)
    return fig, axes[0]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _empty(ax) -> None:
    ax.text(0.5, 0.5, "no effective cluster\n(every sample excluded)", ha="center", va="center",
            transform=ax.transAxes, fontsize=9, color="#cc3311")


def plot_cluster_sizes(
    clusters: dict[str, np.ndarray], schemes: list[str], min_count: int, lag: int, path: Path
) -> None:
    """Histogram of train samples per non-empty cluster (log x), with the effective-cluster cut."""
    fig, axes = _grid(len(schemes))
    for ax, s in zip(axes, schemes, strict=True):
        c = clusters.get(f"{s}.train_counts", np.zeros(0))
        c = c[c > 0]
        if c.size:
            bins = np.logspace(0, np.log10(max(c.max(), 2)) + 0.1, 30)
            ax.hist(c, bins=bins, color="#4477aa")
            ax.set_xscale("log")
        ax.axvline(min_count, color="#cc3311", ls="--", label=f">= {min_count}: effective")
        ax.set_title(f"{s} (lag {lag}): {c.size} non-empty", fontsize=9)
        ax.set_xlabel("train samples per cluster")
        ax.set_ylabel("clusters")
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_cluster_variance(clusters: dict[str, np.ndarray], schemes: list[str], lag: int, path: Path) -> None:
    """Per effective cluster: mean per-dim variance of normalised Δx vs its train size."""
    fig, axes = _grid(len(schemes))
    for ax, s in zip(axes, schemes, strict=True):
        n = clusters.get(f"{s}.eff_train_counts", np.zeros(0))
        v = clusters.get(f"{s}.eff_variance", np.zeros(0))
        ax.scatter(n, v, s=8, alpha=0.6, color="#228833")
        if not n.size:
            _empty(ax)
        ax.axhline(1.0, color="grey", ls=":", label="all train frames")
        if n.size:
            ax.set_xscale("log")
        ax.set_title(f"{s} (lag {lag}): {n.size} effective", fontsize=9)
        ax.set_xlabel("train samples in cluster")
        ax.set_ylabel("mean per-dim variance of Δx")
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_cluster_means(clusters: dict[str, np.ndarray], schemes: list[str], lag: int, path: Path) -> None:
    """2-D PCA of the effective clusters' mean Δx, marker area ∝ train count."""
    fig, axes = _grid(len(schemes))
    for ax, s in zip(axes, schemes, strict=True):
        xy = clusters.get(f"{s}.eff_mean_pca2", np.zeros((0, 2))).reshape(-1, 2)
        n = clusters.get(f"{s}.eff_train_counts", np.zeros(0))
        if xy.shape[0]:
            ax.scatter(xy[:, 0], xy[:, 1], s=8 + 200 * n / max(n.max(), 1), alpha=0.5, color="#aa3377")
        else:
            _empty(ax)
        ax.set_title(f"{s} (lag {lag}): cluster mean Δx", fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    _save(fig, path)


def plot_confidence(curve, schemes: list[str], lag: int, path: Path) -> None:
    """VR of the top-q % most confident assignments (solid: train means; dashed: re-estimated)."""
    fig, axes = _grid(len(schemes))
    colors = {"train": "#4477aa", "heldout": "#228833", "eval": "#cc3311"}
    for ax, s in zip(axes, schemes, strict=True):
        drawn = False
        for split, color in colors.items():
            d = [r for r in curve if r["scheme"] == s and r["split"] == split and r["lag"] == lag
                 and r["vr_train_means"] is not None]
            if not d:
                continue
            q = [r["keep_pct"] for r in d]
            ax.plot(q, [r["vr_train_means"] for r in d], color=color, label=f"{split}")
            ax.plot(q, [r["vr"] for r in d], color=color, ls="--", lw=0.8)
            drawn = True
        ax.axhline(1.0, color="grey", ls=":")
        ax.set_title(f"{s} (lag {lag})", fontsize=9)
        ax.set_xlabel("kept: top q % most confident")
        ax.set_ylabel("VR (solid: train means)")
        if drawn:
            ax.legend(fontsize=7)
        else:
            _empty(ax)
    _save(fig, path)


def plot_speakers(speakers, schemes: list[str], lag: int, path: Path) -> None:
    """Distribution of per-speaker VR around train means, per split."""
    fig, axes = _grid(len(schemes))
    splits = ["train", "heldout", "eval"]
    for ax, s in zip(axes, schemes, strict=True):
        data = [[r["vr_train_means"] for r in speakers if r["scheme"] == s and r["split"] == sp
                 and r["lag"] == lag and r["vr_train_means"] is not None] for sp in splits]
        keep = [i for i, d in enumerate(data) if d]
        if keep:
            ax.boxplot([data[i] for i in keep], tick_labels=[splits[i] for i in keep])
        else:
            _empty(ax)
        ax.axhline(1.0, color="grey", ls=":")
        ax.set_title(f"{s} (lag {lag}): per-speaker VR", fontsize=9)
        ax.set_ylabel("VR around train cluster means")
    _save(fig, path)
