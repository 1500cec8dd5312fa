"""Tier 1 comparison: one table over encoder × rate × model × k, its headline and its report.

Representations are compared per dimension (nats/dim), at a common frame rate as well as
at their native rates, after equal passes over their data: the origin ranked a 75 Hz,
128-d EnCodec against a 12.5 Hz, 512-d Mimi by total nats after unequal training, and its
ranking flips per dimension.
"""

from __future__ import annotations

import math
from typing import Any

from audioprobe.runtime.headline import RANDOM_INIT_BANNER, STATUS, SYNTHETIC_BANNER
from audioprobe.runtime.provenance import RANDOM_INIT

ALL_ENCODERS = ("mel", "mimi", "encodec")  # headline keys exist for each, run or not
TABLE_COLUMNS = (
    "encoder", "rate", "frame_rate", "dim", "pooling", "family", "k", "epochs", "steps", "n_train", "n",
    "eval_speakers", "nll_per_dim_mean", "nll_per_dim_median", "nll_per_dim_trim", "baseline_nll_per_dim_mean",
    "dnll_per_dim_mean", "dnll_per_dim_median", "dnll_per_dim_trim", "nll_total_mean", "baseline_nll_total_mean",
    "dnll_total_mean", "dnll_total_median", "dnll_total_trim", "cos_mean", "cos_median", "cos_trim", "logm_r2",
    "weights",
)


def _weights_label(prov: dict[str, Any]) -> str:
    w = prov.get("weights", {})
    source = str(w.get("weights", "none"))
    if source in ("", "none"):
        return f"none ({prov.get('encoder', '?')})"
    if source == RANDOM_INIT:
        return RANDOM_INIT
    sha = str(w.get("sha256", ""))
    return f"{source}@{sha[:12]}" if len(sha) == 64 else source


def comparison_rows(evals: list[dict[str, Any]], encoders: list[str]) -> list[dict[str, Any]]:
    """Return the comparison table: every family's eval rows, sorted encoder, rate, family, k."""
    prov = {}
    for ev in evals:
        for info in ev["representations"]:
            prov[info["encoder"]] = info["provenance"]
    rows = []
    for ev in evals:
        for r in ev["rows"]:
            rows.append({c: r.get(c) for c in TABLE_COLUMNS if c != "weights"}
                        | {"weights": _weights_label(prov.get(r["encoder"], {}))})
    order = {e: i for i, e in enumerate(encoders)}
    rows.sort(key=lambda r: (order.get(r["encoder"], 99), r["rate"] != "native", r["family"], r["k"]))
    return [{c: r[c] for c in TABLE_COLUMNS} for r in rows]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def headline_values(rows: list[dict[str, Any]], injection: list[dict[str, Any]], steps: int,
                    common_rate: float) -> dict[str, Any]:
    """Return the Tier 1 headline (unprefixed): per encoder at the common rate and k = 1,
    vmf/mdn eval ΔNLL per dim (mean), vmf cosine (mean) and the vmf free-rollout (mode D)
    median normalised state error at the last step. An encoder not run reads "n/a"."""
    out: dict[str, Any] = {"common_rate": float(common_rate)}
    for enc in ALL_ENCODERS:
        def pick(family: str, col: str) -> Any:
            for r in rows:
                if (r["encoder"], r["rate"], r["family"], r["k"]) == (enc, "common", family, 1) and _num(r.get(col)):
                    return round(float(r[col]), 6)
            return STATUS["undefined"]
        out[f"{enc}.vmf_dnll_per_dim_k1"] = pick("vmf", "dnll_per_dim_mean")
        out[f"{enc}.mdn_dnll_per_dim_k1"] = pick("mdn", "dnll_per_dim_mean")
        out[f"{enc}.vmf_cos_k1"] = pick("vmf", "cos_mean")
        err = [r["state_err_median"] for r in injection
               if (r["encoder"], r["rate"], r["family"], r["mode"], int(r["step"])) == (enc, "common", "vmf", "D", steps)
               and _num(r.get("state_err_median"))]
        out[f"{enc}.vmf_state_error_free_step{steps}"] = round(float(err[0]), 6) if err else STATUS["undefined"]
    return out


def provenance(evals: list[dict[str, Any]]) -> tuple[dict, dict, dict]:
    """Return (data, weights, extra values) for audioprobe.runtime.headline from the representations' provenance.

    data = {"librispeech": ...} (one corpus, the same for every encoder); weights = one entry
    per encoder with weights; an encoder without weights (mel) gets the value
    weights.<enc> = "none (mel)".
    """
    data: dict[str, Any] = {}
    weights: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for ev in evals:
        for info in ev["representations"]:
            p = info["provenance"]
            d = p.get("data", {})
            data["librispeech"] = {"source": d.get("source", "unknown"), "sha256": d.get("sha256", "unknown")}
            w = p.get("weights", {})
            source = str(w.get("weights", "none"))
            if source in ("", "none"):
                extra[f"weights.{info['encoder']}"] = f"none ({info['encoder']})"
            elif source == RANDOM_INIT:
                weights[info["encoder"]] = {"source": RANDOM_INIT, "sha256": None}
            else:
                weights[info["encoder"]] = {"source": source, "sha256": w.get("sha256", "unknown")}
    for enc in ALL_ENCODERS:  # stable keys: an encoder that did not run reads "n/a"
        if enc not in weights and f"weights.{enc}" not in extra:
            extra[f"weights.{enc}"] = STATUS["undefined"]
    return data, weights, extra


def banners(data: dict[str, Any], weights: dict[str, Any]) -> list[str]:
    """Return the warning lines for these inputs (synthetic data, random-init weights)."""
    out = []
    if any(rec.get("source") == "embedded" for rec in data.values()):
        out.append(SYNTHETIC_BANNER)
    rnd = sorted(k for k, rec in weights.items() if rec.get("source") == RANDOM_INIT)
    if rnd:
        out.append(f"{RANDOM_INIT_BANNER} ({', '.join(rnd)})")
    return out


def _fmt(v: Any, spec: str = "+.4f") -> str:
    return format(v, spec) if _num(v) else "n/a"


def render_report(rows: list[dict[str, Any]], injection: list[dict[str, Any]], marks: list[str], steps: int,
                  common_rate: float) -> str:
    """Return report.txt: banners, the comparison at k = 1..., and the rollout state errors."""
    lines = [f"WARNING: {m}" for m in marks]
    lines += [
        "",
        "phase0 Tier 1: learned next-step predictors (eval speakers; nats per dimension, density on R^D)",
        "k is a gap before a one-step delta (context ends k frames before t), not a forecast horizon.",
        f"common rate = {common_rate:g} Hz (mean pooling over whole groups of native frames).",
        "dNLL = model - baseline (negative: better than baseline); mean / median / 10%-trimmed mean over samples.",
        "",
        f"{'encoder':8} {'rate':7} {'Hz':>5} {'D':>4} {'model':5} {'k':>2} {'epochs':>6} {'steps':>6} "
        f"{'dNLL/dim mean':>13} {'median':>8} {'trim':>8} {'dNLL total':>10} {'cos':>6} {'logm R2':>8} speakers",
    ]
    for r in rows:
        lines.append(
            f"{r['encoder']:8} {r['rate']:7} {r['frame_rate']:5g} {r['dim']:4d} {r['family']:5} {r['k']:2d} "
            f"{r['epochs']:6g} {r['steps']:6d} {_fmt(r['dnll_per_dim_mean']):>13} {_fmt(r['dnll_per_dim_median']):>8} "
            f"{_fmt(r['dnll_per_dim_trim']):>8} {_fmt(r['dnll_total_mean'], '+.2f'):>10} "
            f"{_fmt(r['cos_mean'], '.3f'):>6} {_fmt(r['logm_r2'], '+.3f'):>8} {r['eval_speakers']}")
    lines += ["", f"Rollout of the k = 1 models (median state error / median train |dx|; whole window reset "
                  f"on injection), step 1 and step {steps}:",
              f"{'encoder':8} {'rate':7} {'model':5} " + " ".join(f"{m + ' s1':>7} {m + ' s' + str(steps):>7}"
                                                                  for m in 'ABCD')]
    keys = []
    for r in injection:
        key = (r["encoder"], r["rate"], r["family"])
        if key not in keys:
            keys.append(key)
    for enc, rate, fam in keys:
        cells = []
        for mode in "ABCD":
            for step in (1, steps):
                v = [r["state_err_median"] for r in injection if (r["encoder"], r["rate"], r["family"], r["mode"],
                                                                  int(r["step"])) == (enc, rate, fam, mode, step)]
                cells.append(f"{_fmt(v[0] if v else None, '.3f'):>7}")
        lines.append(f"{enc:8} {rate:7} {fam:5} " + " ".join(cells))
    sources = [name for flag, name in ((SYNTHETIC_BANNER in marks, "synthetic audio"),
               (any(m.startswith(RANDOM_INIT_BANNER) for m in marks), "random-init encoders")) if flag]
    if sources:
        lines += ["", f"These numbers come from {' and '.join(sources)}: a smoke test of the pipeline; "
                      "they support no conclusion about speech or the codecs."]
    return "\n".join(lines) + "\n"
