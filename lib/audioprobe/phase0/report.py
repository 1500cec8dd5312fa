"""phase0 report: the decision matrix as text with a templated verdict, and the figures.

Every sentence is built from the tables so it cannot say more than they do: the banners
(synthetic data, random-init weights) come first, the verdict quotes only a scheme whose
excluded mass is within the flag, and held-out speakers are counted as the train
speakers they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audioprobe.runtime.atomic import atomic_file
from audioprobe.runtime.headline import RANDOM_INIT_BANNER, SYNTHETIC_BANNER
from audioprobe.phase0.decision import DecisionRule, criteria
from audioprobe.phase0.summary import best_scheme, excluded, net_effect, quotable, shows_numbers

ORIGIN = ("Origin (real Mimi latents, LibriSpeech train-clean-100): FAIL - eval VR 0.997 for mean_vq64 "
          "(random control 0.999), 0.988 for pca8_vq256 (random control 0.995).")
SPLIT_COLORS = {"train": "#4477aa", "heldout": "#228833", "eval": "#cc3311"}


def banners(summary: dict[str, Any]) -> list[str]:
    """The warning lines every phase0 result must carry (synthetic data, random-init weights)."""
    lat = summary.get("latents", {})
    out = []
    if lat.get("data", {}).get("source") == "embedded":
        out.append(SYNTHETIC_BANNER)
    if lat.get("random_init"):
        out.append(RANDOM_INIT_BANNER)
    return out


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


def speaker_line(summary: dict[str, Any]) -> str:
    """Rows and speakers per split, counting held-out speakers as the train speakers they are."""
    rows, spk = summary.get("rows", {}), summary.get("speakers", {})
    held, held_in = spk.get("heldout", 0), spk.get("heldout_also_in_train", 0)
    text = (f"speakers: {spk.get('total', 0)} in all; train {spk.get('train', 0)} speakers ({rows.get('train', 0)} rows); "
            f"eval {spk.get('eval', 0)} unseen speakers ({rows.get('eval', 0)} rows)")
    if rows.get("heldout"):
        who = (f"{held} of the train speakers" if held_in == held
               else f"{held} speakers, {held_in} of them also in train")
        text += f"; held-out utterances of {who} ({rows.get('heldout', 0)} rows)"
    if spk.get("eval_also_in_train"):
        text += f"; WARNING: {spk['eval_also_in_train']} eval speakers also in train"
    return text


def heldout_label(summary: dict[str, Any]) -> str:
    """'heldout VR (same speakers)' only when every held-out speaker is also a train speaker."""
    spk = summary.get("speakers", {})
    held, held_in = spk.get("heldout", 0), spk.get("heldout_also_in_train", 0)
    if held and held_in == held:
        return "heldout VR (same speakers)"
    if held_in:
        return f"heldout VR ({held_in} of {held} spk in train)"
    return "heldout VR (no train speakers)"


def render_report(
    values: dict[str, Any], decision: dict[str, Any], schemes: list[str], rule: DecisionRule, summary: dict[str, Any]
) -> str:
    """Return report.txt: banners, provenance, the decision matrix, supporting numbers, a verdict."""
    lag = rule.lag
    flag = float(summary.get("settings", {}).get("excluded_mass_flag", 0.1))
    lat = summary.get("latents", {})
    lines = ["phase0 - is there reusable structure in codec latent dynamics?", "=" * 64]
    marks = banners(summary)
    if marks:
        lines += [""] + [f"WARNING: {b}" for b in marks]
    if lat.get("random_init"):
        lines += ["WARNING: the latents come from an encoder with RANDOM weights (random-init);",
                  "WARNING: these numbers describe an untrained network, not the codec; do not publish them."]
    if marks:
        lines.append("")
    w, data = lat.get("weights", {}), lat.get("data", {})
    lines.append(f"encoder: {lat.get('encoder')}  weights: {w.get('weights', 'n/a')}  sha256: {w.get('sha256', 'n/a')}")
    lines.append(f"data: librispeech {data.get('source', 'n/a')}  sha256: {data.get('sha256', 'n/a')}  "
                 f"dim {lat.get('dim')} at {lat.get('frame_rate')} Hz")
    lines.append(speaker_line(summary))
    lines.append(f"context: window {summary.get('window')}, lags {','.join(str(v) for v in summary.get('lags', []))}; "
                 f"decision at lag {lag}; seed {summary.get('seed')}")
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
            text = decision.get(f"{s}.{c.name}_status") or _fmt(v)
            cells.append(f"{text + mark:>{width}}")
        lines.append(f"{c.label:<28}{_threshold_text(c.op, thr, flag):<16}" + "".join(cells))
    lines.append(f"{'scheme passes':<44}" + "".join(f"{_fmt(decision.get(f'{s}.pass')):>{width}}" for s in schemes))
    lines.append("(x = criterion not met; n/a = undefined: counts as not met; excluded = the scheme or slice has no")
    lines.append(" included sample or its excluded mass is flagged: no number is shown and the criterion is not met)")

    lines += ["", f"Supporting numbers (lag {lag}, eval unless marked)", ""]
    rows = [
        ("eval VR around train means", "eval.all.vr_train_means"),
        (heldout_label(summary), "heldout.all.vr"),
        ("random control, expected eval", "eval.all.random_vr_expected"),
        ("excluded mass train", "train.all.excluded_mass"),
        ("excluded mass eval", "eval.all.excluded_mass"),
        ("effective clusters", "k_effective"),
        ("clusters (K)", "k"),
        ("entropy H (nats)", "eval.all.entropy_h"),
        ("entropy H_cond (nats)", "eval.all.entropy_h_cond"),
        ("entropy reduction nats/dim", "eval.all.entropy_reduction_nats"),
        ("  same, random control", "eval.all.random_entropy_reduction_nats"),
        ("  gain over control nats/dim", "eval.all.entropy_gain_nats"),
        ("speaker VR eval mean", "eval.all.speaker_vr_mean"),
        ("speaker VR eval std", "eval.all.speaker_vr_std"),
        ("speaker VR(train means) eval", "eval.all.speaker_vr_train_means_mean"),
    ]
    # What describes the exclusion (masses, cluster counts) is shown for every scheme; results of an
    # excluded scheme are not: they are computed on its small remnant.
    keep = {"train.all.excluded_mass", "eval.all.excluded_mass", "k_effective", "k"}
    hidden = {s for s in schemes if not shows_numbers(values, decision, s, lag, flag)}
    for label, key in rows:
        lines.append(f"{label:<44}" + "".join(
            f"{'excluded' if s in hidden and key not in keep else _fmt(values.get(f'lag{lag}.{s}.{key}')):>{width}}"
            for s in schemes))
    lines.append("(entropy reduction: ½Σlog σ² minus its cluster-weighted mean, per dim; the random control has the")
    lines.append(" same cluster sizes and no structure, so only the gain over it says something)")
    flagged = [s for s in schemes if not quotable(values, s, lag, flag)]
    if flagged:
        min_count = summary.get("settings", {}).get("min_cluster_train_samples")
        lines.append(f"FLAG: excluded mass above {flag:.0%} for {', '.join(flagged)} (clusters with < {min_count} "
                     "train samples are excluded from every VR); their VRs are not quoted")
    lines += ["", "Verdict", "", verdict(values, decision, schemes, rule, summary), "", ORIGIN, ""]
    return "\n".join(lines)


def verdict(
    values: dict[str, Any], decision: dict[str, Any], schemes: list[str], rule: DecisionRule, summary: dict[str, Any]
) -> str:
    """Return the templated verdict: never quotes a flagged scheme, never a finding on synthetic data."""
    lag = rule.lag
    flag = float(summary.get("settings", {}).get("excluded_mass_flag", 0.1))
    lat = summary.get("latents", {})
    synthetic = lat.get("data", {}).get("source") == "embedded"
    tail = ""
    if synthetic:
        tail += f" WARNING: {SYNTHETIC_BANNER}."
    if lat.get("random_init"):
        tail += " Latents from a RANDOM-INIT encoder: this verdict says nothing about the trained codec."
    best = best_scheme(values, decision, schemes, lag, flag)
    skipped = [s for s in schemes if not quotable(values, s, lag, flag)]
    skip_txt = (f" Not quoted: {', '.join(skipped)} (excluded mass above {flag:.0%}, or no eval VR)."
                if skipped else "")
    if decision.get("pass"):
        names = decision.get("passing_schemes", "")
        assert best is not None  # a passing scheme has an eval VR
        nxt = "" if synthetic or lat.get("random_init") else " Proceed to Phase 1 (minimal Engram modelling)."
        return (f"PASS at lag {lag}: {names} meet every criterion; the best eval VR is {best[1]:.3f} ({best[0]})"
                f"{effect_text(values, best[0], best[1], lag)} on unseen speakers.{nxt}{skip_txt}{tail}")
    if best is None:
        return (f"FAIL at lag {lag}: no scheme has an eval VR that can be quoted (every scheme is excluded "
                f"beyond the {flag:.0%} flag, or has no eval speakers): there is no evidence of structure."
                f"{skip_txt}{tail}")
    reading = ("" if synthetic or lat.get("random_init") else
               " A negative result for these latents: no reusable lookup structure at this granularity.")
    return (f"FAIL at lag {lag}: no conditioning scheme meets every criterion. The lowest quotable eval VR is "
            f"{best[1]:.3f} ({best[0]}){effect_text(values, best[0], best[1], lag)}. The rule needs VR < "
            f"{rule.vr_max:g} (> {1 - rule.vr_max:.0%} in-sample).{reading}{skip_txt}{tail}")


CONTROL = "its permuted random control (the same ids shuffled across the split: same cluster sizes, no link to the target)"


def effect_text(values: dict[str, Any], scheme: str, vr: float, lag: int) -> str:
    """The verdict's effect clause: net of the permuted control, saying which, raw shares beside it."""
    rnd = values.get(f"lag{lag}.{scheme}.eval.all.random_vr")
    net = net_effect(values, scheme, lag)
    tm = values.get(f"lag{lag}.{scheme}.eval.all.vr_train_means")
    tm_txt = (f"; around the train cluster means (out of sample) they explain {1 - float(tm):.1%}"
              if isinstance(tm, (int, float)) else "")
    if net is None:
        return (f" with no defined random control: coarse context clusters explain {1 - vr:.1%} of next-step "
                f"variance in-sample, an upper bound that no control corrects{tm_txt}")
    return (f" vs {float(rnd):.3f} for {CONTROL}: net of that control, coarse context clusters explain "
            f"{net:.1%} of next-step variance (eval VR_random − VR; in-sample {1 - vr:.1%}, of which the "
            f"control explains {1 - float(rnd):.1%} by construction{tm_txt})")


# ----------------------------------------------------------------------------- figures
def _grid(n: int, title: str, marks: list[str]):
    import matplotlib.pyplot as plt

    n = max(n, 1)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 4.0), squeeze=False)
    head = title if not marks else title + "\n" + "\n".join(m.upper() if i == 0 else m for i, m in enumerate(marks))
    fig.suptitle(head, fontsize=10, color="#cc3311" if marks else "black")
    return fig, axes[0]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_file(path) as tmp:
        # No timestamp or software tag in the PNG metadata: the bytes depend on the data only.
        fig.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    plt.close(fig)


def _excluded_panel(ax, text: str) -> None:
    """A hatched, labelled panel in place of bars: nothing there reads as a value."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor="none", edgecolor="#cc3311",
                           hatch="//", alpha=0.35, lw=0))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#cc3311",
            bbox={"facecolor": "white", "edgecolor": "#cc3311"})
    ax.set_xticks([])
    ax.set_yticks([])


def _empty(ax, text: str = "no effective cluster\n(every sample excluded)") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#cc3311")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_vr_by_slice(values: dict[str, Any], schemes: list[str], rule: DecisionRule, flag: float,
                     marks: list[str], path: Path, decision: dict[str, Any] | None = None) -> None:
    """VR per slice and split with its random control, the pass thresholds as lines.

    An undefined VR is written as text, never drawn as a bar of 0; an excluded scheme (no
    included sample, or excluded mass over the flag) gets a hatched panel saying so and no
    bar. Only a flagged scheme that passes (the origin's rule) is drawn, hatched.
    """
    lag = rule.lag
    passes = {s: bool((decision or {}).get(f"{s}.pass")) for s in schemes}
    fig, axes = _grid(len(schemes), f"phase0: VR per slice at lag {lag} (bars: scheme, black ticks: random "
                      "control; lower = more structure)", marks)
    slices = ("all", "high_energy", "medial")
    splits = ("train", "eval")
    for ax, s in zip(axes, schemes, strict=True):
        pre = f"lag{lag}.{s}."
        ok = quotable(values, s, lag, flag)
        if not values.get(f"{pre}train.all.n_included"):
            _excluded_panel(ax, f"{s}: excluded\n(every sample in clusters below\nthe train-size floor): no VR")
            ax.set_title(s, fontsize=9)
            continue
        if excluded(values, s, lag, flag) and not passes.get(s):
            # A VR over a flagged remnant can be ~0 and would read as perfect: no bar at all.
            exc = [values.get(f"{pre}{sp}.all.excluded_mass") for sp in splits]
            exc_txt = "/".join(f"{e:.0%}" if isinstance(e, float) else "n/a" for e in exc)
            _excluded_panel(ax, f"{s}: excluded\n{exc_txt} of train/eval samples in clusters\nbelow the "
                            f"train-size floor (flag {flag:.0%}): no VR drawn")
            ax.set_title(f"{s}: EXCLUDED", fontsize=9, color="#cc3311")
            continue
        for i, sl in enumerate(slices):
            thr = rule.vr_max if sl == "all" else rule.slice_vr_max
            ax.hlines(thr, i - 0.45, i + 0.45, color="#222222", ls="--", lw=1.4, zorder=4,
                      label=(f"pass: VR < {rule.vr_max:g} (all) / <= {rule.slice_vr_max:g} (slices)"
                             if i == 0 else None))
            for j, split in enumerate(splits):
                xpos = i + (j - 0.5) * 0.38
                v = values.get(f"{pre}{split}.{sl}.vr")
                r = values.get(f"{pre}{split}.{sl}.random_vr")
                if not isinstance(v, float):
                    ax.text(xpos, 0.05, "n/a", ha="center", fontsize=8, color="#cc3311", rotation=90)
                    continue
                ax.bar(xpos, v, width=0.36, color=SPLIT_COLORS[split], alpha=0.85 if ok else 0.35,
                       hatch=None if ok else "//", label=split if i == 0 else None)
                if isinstance(r, float):
                    ax.hlines(r, xpos - 0.18, xpos + 0.18, color="black", lw=2.5, zorder=5,
                              label="random control" if i == 0 and j == 0 else None)
        ax.axhline(1.0, color="grey", ls=":", lw=1)
        ax.set_xticks(range(len(slices)), list(slices))
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("VR (within-cluster / total variance of Δx)")
        exc = [values.get(f"{pre}{sp}.all.excluded_mass") for sp in splits]
        exc_txt = "/".join(f"{e:.0%}" if isinstance(e, float) else "n/a" for e in exc)
        ax.set_title(f"{s}: excluded {exc_txt} (train/eval)" + ("" if ok else f"\n> {flag:.0%} flag: NOT QUOTED"),
                     fontsize=9, color="black" if ok else "#cc3311")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    _save(fig, path)


def plot_cluster_sizes(clusters: dict[str, np.ndarray], schemes: list[str], min_count: int, lag: int,
                       marks: list[str], path: Path) -> None:
    """Histogram of train samples per non-empty cluster (log x), with the effective-cluster cut."""
    fig, axes = _grid(len(schemes), f"phase0: train samples per cluster (lag {lag})", marks)
    for ax, s in zip(axes, schemes, strict=True):
        c = clusters.get(f"{s}.train_counts", np.zeros(0))
        c = c[c > 0]
        if c.size:
            bins = np.logspace(0, np.log10(max(c.max(), 2)) + 0.1, 30)
            ax.hist(c, bins=bins, color="#4477aa")
            ax.set_xscale("log")
        ax.axvline(min_count, color="#cc3311", ls="--", label=f"floor: >= {min_count} train samples")
        ax.set_title(f"{s}: {c.size} non-empty, {int((c >= min_count).sum())} effective", fontsize=9)
        ax.set_xlabel("train samples per cluster")
        ax.set_ylabel("clusters")
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_cluster_variance(clusters: dict[str, np.ndarray], schemes: list[str], lag: int,
                          marks: list[str], path: Path) -> None:
    """Per effective cluster: mean per-dim variance of normalised Δx vs its train size."""
    fig, axes = _grid(len(schemes), f"phase0: within-cluster variance of normalised Δx (lag {lag})", marks)
    for ax, s in zip(axes, schemes, strict=True):
        n = clusters.get(f"{s}.eff_train_counts", np.zeros(0))
        v = clusters.get(f"{s}.eff_variance", np.zeros(0))
        if not n.size:
            _empty(ax)
            ax.set_title(s, fontsize=9)
            continue
        ax.scatter(n, v, s=8, alpha=0.6, color="#228833")
        ax.axhline(1.0, color="grey", ls=":", label="all train frames (1 after normalisation)")
        ax.set_xscale("log")
        ax.set_title(f"{s}: {n.size} effective clusters", fontsize=9)
        ax.set_xlabel("train samples in cluster")
        ax.set_ylabel("mean per-dim variance of Δx")
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_cluster_means(clusters: dict[str, np.ndarray], schemes: list[str], lag: int,
                       marks: list[str], path: Path) -> None:
    """2-D PCA of the effective clusters' mean Δx, marker area ∝ train count."""
    fig, axes = _grid(len(schemes), f"phase0: cluster mean Δx on its top-2 principal axes (lag {lag})", marks)
    for ax, s in zip(axes, schemes, strict=True):
        xy = clusters.get(f"{s}.eff_mean_pca2", np.zeros((0, 2))).reshape(-1, 2)
        n = clusters.get(f"{s}.eff_train_counts", np.zeros(0))
        if not xy.shape[0]:
            _empty(ax)
            ax.set_title(s, fontsize=9)
            continue
        ax.scatter(xy[:, 0], xy[:, 1], s=8 + 200 * n / max(n.max(), 1), alpha=0.5, color="#aa3377")
        ax.set_title(f"{s}: marker area ∝ train samples", fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    _save(fig, path)


def flag_notes(values: dict[str, Any], schemes: list[str], lag: int, flag: float,
               decision: dict[str, Any] | None = None) -> dict[str, str]:
    """Return {scheme: subplot-title note} for excluded schemes that still have train samples
    (over the exclusion flag): the charts draw no value for them, only this note. A scheme
    that passes (the origin's rule) is drawn and gets no note."""
    out = {}
    for s in schemes:
        if (values.get(f"lag{lag}.{s}.train.all.n_included") and excluded(values, s, lag, flag)
                and not (decision or {}).get(f"{s}.pass")):
            mass = max((values.get(f"lag{lag}.{s}.{sp}.all.excluded_mass") or 0.0) for sp in ("train", "eval"))
            out[s] = f"excluded {mass:.0%} > {flag:.0%} flag: no value drawn"
    return out


def _title(ax, scheme: str, notes: dict[str, str] | None, text: str = "") -> None:
    note = (notes or {}).get(scheme)
    head = f"{scheme}: {text}" if text else scheme
    ax.set_title(head + (f"\n{note}" if note else ""), fontsize=9, color="#cc3311" if note else "black")


def plot_speakers(speakers: list[dict], schemes: list[str], lag: int, marks: list[str], path: Path,
                  notes: dict[str, str] | None = None, vr_max: float | None = None) -> None:
    """Per-speaker VR around the train cluster means, per split (1 = no structure).

    The y axis always spans 0 to at least 1.05, with the no-structure line at 1 and the pass
    threshold `vr_max`: autoscaled to the data (0.94–1.00 on the embedded default) a chance-level
    spread looked like structure.
    """
    fig, axes = _grid(len(schemes), f"phase0: per-speaker VR around train cluster means (lag {lag})", marks)
    splits = ["train", "heldout", "eval"]
    for ax, s in zip(axes, schemes, strict=True):
        data = [[r["vr_train_means"] for r in speakers if r["scheme"] == s and r["split"] == sp
                 and r["lag"] == lag and r["vr_train_means"] is not None] for sp in splits]
        keep = [i for i, d in enumerate(data) if d]
        if (notes or {}).get(s):
            _excluded_panel(ax, f"{s}: excluded\n{notes[s]}")
            ax.set_title(f"{s}: EXCLUDED", fontsize=9, color="#cc3311")
            continue
        if not keep:
            _empty(ax)
            ax.set_title(s, fontsize=9)
            continue
        ax.boxplot([data[i] for i in keep], tick_labels=[f"{splits[i]}\n({len(data[i])} spk)" for i in keep])
        ax.axhline(1.0, color="grey", ls=":", label="1 = no structure (chance)")
        if vr_max is not None:
            ax.axhline(vr_max, color="#222222", ls="--", lw=1.2, label=f"pass: VR < {vr_max:g}")
        top = max(max(max(d) for d in (data[i] for i in keep)), 1.0)
        ax.set_ylim(0.0, max(1.05, top * 1.05))
        _title(ax, s, notes)
        ax.set_ylabel("VR around train cluster means")
        ax.legend(fontsize=7)
    _save(fig, path)


EXCLUDED_NOTE = "no effective cluster: every sample excluded (not drawn)"
ESTIMATES = {"vr_train_means": "around train cluster means", "vr": "cluster means re-estimated"}


def confidence_rows(curve: list[dict], schemes: list[str], rule: DecisionRule, marks: list[str],
                    notes: dict[str, str] | None = None) -> list[dict]:
    """Return the confidence chart's rows at the decision lag: one per scheme x split x keep % x estimate.

    `vr` is None (an empty CSV cell, never 0) where it is undefined; a scheme with no
    defined value at all carries EXCLUDED_NOTE, a scheme over the exclusion flag its flag
    note, so the Vega chart (lib/audioprobe/phase0/vega/confidence.json) can say so in
    its panel instead of drawing a line. `vr_max` is the pass threshold drawn as a line;
    `banner` the data's warning lines (synthetic data, random-init weights), shown above the panels.
    """
    lag = rule.lag
    rows = []
    for s in schemes:
        mine = sorted((r for r in curve if r["scheme"] == s and r["lag"] == lag),
                      key=lambda r: (list(SPLIT_COLORS).index(r["split"]) if r["split"] in SPLIT_COLORS
                                     else len(SPLIT_COLORS), r["split"], r["keep_pct"]))
        defined = any(r[k] is not None for r in mine for k in ESTIMATES)
        note = (notes or {}).get(s, "") if defined else EXCLUDED_NOTE
        for r in mine:
            for key, estimate in ESTIMATES.items():
                # An excluded (flagged) scheme's panel says so and draws nothing.
                rows.append({"scheme": s, "split": r["split"], "keep_pct": r["keep_pct"], "n_kept": r["n_kept"],
                             "estimate": estimate, "vr": None if note else r[key], "vr_max": rule.vr_max,
                             "note": note,
                             "banner": "; ".join(marks)})
    return rows
