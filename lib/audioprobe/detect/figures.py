"""Figures of the detect lane: psychometric curves with DT markers, reliability, confusion, error heatmaps, Pareto."""

from __future__ import annotations

import textwrap

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from audioprobe.runtime.atomic import atomic_file  # noqa: E402
from audioprobe.detect import psychometric as psy  # noqa: E402

COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _save(fig, path: Path) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})  # no version string: stable bytes
    plt.close(fig)


def _title(fig, text: str, banners: list[str]) -> None:
    """The figure title and its banners, wrapped to the figure's width (~11 characters per inch at 10 pt)."""
    width = max(40, int(fig.get_size_inches()[0] * 11))
    fig.suptitle("\n".join(line for part in (text, *banners) for line in textwrap.wrap(part, width)), fontsize=10)


def ci_band(ax, c: dict, tag: str) -> list:
    """Shade the 95 % CI of one DT of a pooled curve row (fit_with_ci keys); return the artists drawn.

    A two-sided finite CI is a plain band. A half-censored one (DT50 16.2 [5.0, > 20]) is a band to
    the edge of the tested range ([c['lo'], c['hi']]), hatched, with an open arrowhead at that edge:
    the interval goes on past what was tested. Nothing is drawn for a CI that lies wholly outside the
    range or is undefined (n/a, no-rise).
    """
    lo_s, hi_s = c.get(f"{tag}_lo_status"), c.get(f"{tag}_hi_status")
    if psy.OK not in (lo_s, hi_s) and not (lo_s == psy.LOW and hi_s == psy.HIGH):
        return []
    if lo_s not in (psy.OK, psy.LOW) or hi_s not in (psy.OK, psy.HIGH):
        return []
    left = c[f"{tag}_lo"] if lo_s == psy.OK else c["lo"]
    right = c[f"{tag}_hi"] if hi_s == psy.OK else c["hi"]
    if lo_s == hi_s == psy.OK:
        return [ax.axvspan(left, right, color="red", alpha=0.08)]
    out = [ax.axvspan(left, right, facecolor="red", alpha=0.08, hatch="///", edgecolor="red", lw=0)]
    trans = ax.get_xaxis_transform()  # x in data, y in axes fraction
    y = 0.06 if tag == "dt50" else 0.12
    for side, x, marker in ((lo_s, c["lo"], "<"), (hi_s, c["hi"], ">")):
        if side != psy.OK:  # the open end: an unfilled arrowhead at the range edge
            out += ax.plot([x], [y], marker=marker, ms=7, mfc="none", mec="red", transform=trans, clip_on=False)
    return out


def psychometric(curves: list[dict], points: list[dict], systems: list[str], path: Path, banners: list[str]) -> None:
    """Per system: BA vs SNR and BA vs duration, pooled points + fit, thin per-slice fits, DT50/DT75 lines."""
    # Constrained layout: tight_layout left the three-line title over the first row's panel titles.
    fig, axes = plt.subplots(len(systems), 2, figsize=(11, 3.4 * len(systems)), squeeze=False, layout="constrained")
    for i, name in enumerate(systems):
        for j, axis in enumerate(("snr", "duration")):
            ax = axes[i, j]
            rows = [c for c in curves if c["system"] == name and c["axis"] == axis]
            for k, c in enumerate(rows):
                pts = [p for p in points if p["system"] == name and p["axis"] == axis and p["slice"] == c["slice"]]
                if not pts:
                    continue
                lv = np.array([p["level"] for p in pts])
                pooled = c["slice"] == "pooled"
                colour = "black" if pooled else COLOURS[k % len(COLOURS)]
                ax.plot(lv, [p["bal_acc"] for p in pts], "o" if pooled else ".", color=colour, ms=6 if pooled else 4,
                        label=f"{c['slice']}" if pooled else c["slice"])
                if c.get("status") == psy.OK:
                    lo, hi = lv.min(), lv.max()
                    xs = np.geomspace(lo, hi, 200) if axis == "duration" else np.linspace(lo, hi, 200)
                    xf = np.log2(xs) if axis == "duration" else xs
                    x50 = np.log2(c["x50"]) if axis == "duration" else c["x50"]
                    ax.plot(xs, psy.curve(xf, x50, c["slope"], c["lapse"]), "-", color=colour,
                            lw=2 if pooled else 0.8, alpha=1 if pooled else 0.6)
                if pooled:
                    for tag, style in (("dt50", "--"), ("dt75", ":")):
                        if c.get(f"{tag}_status") == psy.OK:
                            ax.axvline(c[tag], color="red", ls=style, lw=1.2, label=f"{tag.upper()} {c[f'{tag}_text']}")
                        else:
                            ax.plot([], [], " ", label=f"{tag.upper()} {c.get(f'{tag}_text', 'n/a')}")
                        ci_band(ax, c, tag)
            ax.axhline(0.5, color="grey", lw=0.8, ls="-")
            ax.set_ylim(0.3, 1.02)
            ax.set_ylabel("balanced accuracy (test)")
            if axis == "duration":
                ax.set_xscale("log")
                durs = sorted({p["level"] for p in points if p["system"] == name and p["axis"] == axis})
                ax.set_xticks(durs, [f"{d:g}" for d in durs])
                ax.minorticks_off()
                ax.set_xlabel("duration (ms, log scale)")
            else:
                ax.set_xlabel("SNR (dB)")
            ax.set_title(f"{name}: BA vs {axis}", fontsize=9)
            ax.legend(fontsize=6, loc="best", framealpha=0.6)
    _title(fig, "detect: psychometric fits (gamma 0.5, lapse <= max); DT50 dashed, DT75 dotted, shaded 95 % CI"
           " (hatched to the range edge, open arrowhead: the CI goes on past the tested range)", banners)
    _save(fig, path)


PANEL_COLS = 3  # systems per row: seven panels in one strip rendered at ~4 px labels on a page


def panels(n: int, width: float, height: float, **kw):
    """(figure, the first n axes) of a grid of at most PANEL_COLS columns; unused cells are hidden."""
    cols = min(n, PANEL_COLS)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def reliability(rows: list[dict], systems: list[str], path: Path, banners: list[str]) -> None:
    """Per system: accuracy vs mean confidence per non-empty bin, bar width = bin, counts annotated;
    one legend for the figure, under the title (a legend inside a panel covered its bars)."""
    fig, axes = panels(len(systems), 3.6, 3.4)
    for ax, name in zip(axes, systems):
        rs = [r for r in rows if r["system"] == name and r["count"]]
        ax.bar([r["lo"] for r in rs], [r["accuracy"] for r in rs], width=[r["hi"] - r["lo"] for r in rs],
               align="edge", edgecolor="black", alpha=0.6, label="accuracy")
        ax.plot([r["confidence"] for r in rs], [r["accuracy"] for r in rs], "k.", label="(mean confidence, accuracy)")
        for r in rs:
            ax.annotate(str(r["count"]), (r["lo"] + 0.005, 0.02), fontsize=6)
        ax.plot([0.5, 1], [0.5, 1], "r--", lw=1, label="perfect calibration")
        ax.set_xlim(0.5, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence max(p, 1-p)")
        ax.set_ylabel("accuracy")
        ax.set_title(name, fontsize=9)
    _title(fig, "detect: reliability on test (10 equal-width bins; counts at the bottom)", banners)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    handles, labels = axes[0].get_legend_handles_labels()  # under the panels, clear of the title
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=3, fontsize=9, frameon=False)
    _save(fig, path)


def confusion(results: dict[str, dict], systems: list[str], path: Path, banners: list[str]) -> None:
    fig, axes = panels(len(systems), 3.4, 3.2)
    names = ["NONSPEECH", "SPEECH"]
    for ax, name in zip(axes, systems):
        y, pred = results[name]["y"], results[name]["pred"]
        cm = np.array([[np.sum(~y & ~pred), np.sum(~y & pred)], [np.sum(y & ~pred), np.sum(y & pred)]])
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, cm.sum(axis=1).max()))
        for a in range(2):
            for b in range(2):
                ax.text(b, a, str(cm[a, b]), ha="center", va="center", fontsize=11)
        ax.set_xticks([0, 1], names, fontsize=7)
        ax.set_yticks([0, 1], names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(name, fontsize=9)
    _title(fig, "detect: test confusion matrices (threshold fitted on dev)", banners)
    fig.tight_layout()
    _save(fig, path)


def error_heatmaps(rows: list[dict], systems: list[str], path: Path, banners: list[str]) -> None:
    fig, axes = panels(len(systems), 3.8, 3.6, layout="constrained")
    for ax, name in zip(axes, systems):
        rs = [r for r in rows if r["system"] == name]
        snrs = sorted({r["snr_db"] for r in rs})
        durs = sorted({r["duration_ms"] for r in rs})
        grid = np.full((len(snrs), len(durs)), np.nan)
        for r in rs:
            grid[snrs.index(r["snr_db"]), durs.index(r["duration_ms"])] = r["error_rate"]
        im = ax.imshow(grid, cmap="Reds", vmin=0, vmax=1, origin="lower", aspect="auto")
        for a in range(len(snrs)):
            for b in range(len(durs)):
                ax.text(b, a, f"{grid[a, b]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(durs)), [str(d) for d in durs], fontsize=7)
        ax.set_yticks(range(len(snrs)), [f"{s:g}" for s in snrs], fontsize=7)
        ax.set_xlabel("duration (ms)")
        ax.set_ylabel("SNR (dB)")
        ax.set_title(name, fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="test error rate")
    _title(fig, "detect: test error rate per SNR x duration", banners)
    _save(fig, path)


def pareto(rows: list[dict], path: Path, banners: list[str]) -> None:
    """Test BA vs mean latency per clip (this host), Pareto front joined."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(rows):
        ax.plot(r["latency_ms"], r["bal_acc"], "o", color=COLOURS[i % len(COLOURS)], label=r["system"])
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["latency_ms"])
    # a staircase: between two front points nothing is attained (no interpolation)
    ax.plot([r["latency_ms"] for r in front], [r["bal_acc"] for r in front], "k--", lw=1, drawstyle="steps-post",
            label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("mean latency per clip, ms (this host; log scale)")
    ax.set_ylabel("balanced accuracy (test)")
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.legend(fontsize=7)
    _title(fig, "detect: accuracy vs latency (host-dependent; not a DVC output)", banners)
    fig.tight_layout()
    _save(fig, path)
