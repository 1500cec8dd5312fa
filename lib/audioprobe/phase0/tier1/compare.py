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
    "ctxfree_nll_per_dim_mean", "dnll_ctx_per_dim_mean", "dnll_ctx_per_dim_median", "dnll_ctx_per_dim_trim",
    "undertrained", "weights",
)
DERIVED = ("weights", "undertrained")


def undertrained(row: dict[str, Any]) -> bool:
    """True when a ΔNLL's mean is positive while its median is negative (against either baseline):
    most samples gain, a tail of samples loses heavily — the signature of too few steps, not of
    a model that is worse."""
    for pre in ("dnll_per_dim", "dnll_ctx_per_dim"):
        mean, med = row.get(f"{pre}_mean"), row.get(f"{pre}_median")
        if _num(mean) and _num(med) and mean > 0 > med:
            return True
    return False


def context_gain(rows: list[dict[str, Any]], encoder: str, rate: str, family: str) -> tuple[int, int, Any]:
    """Return (1, longest k, mean NLL/dim at k = 1 − at the longest k) for one series; "n/a" when undefined.

    Every k is evaluated on the same targets, so the difference is what the most recent
    context adds over an older one (negative = the recent context helps)."""
    mine = {r["k"]: r for r in rows if (r["encoder"], r["rate"], r["family"]) == (encoder, rate, family)}
    if 1 not in mine or len(mine) < 2:
        return 1, max(mine, default=1), STATUS["undefined"]
    kmax = max(mine)
    a, b = mine[1].get("nll_per_dim_mean"), mine[kmax].get("nll_per_dim_mean")
    return 1, kmax, (float(a) - float(b) if _num(a) and _num(b) else STATUS["undefined"])


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
            rows.append({c: r.get(c) for c in TABLE_COLUMNS if c not in DERIVED}
                        | {"weights": _weights_label(prov.get(r["encoder"], {})), "undertrained": undertrained(r)})
    order = {e: i for i, e in enumerate(encoders)}
    rows.sort(key=lambda r: (order.get(r["encoder"], 99), r["rate"] != "native", r["family"], r["k"]))
    return [{c: r[c] for c in TABLE_COLUMNS} for r in rows]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def headline_values(rows: list[dict[str, Any]], injection: list[dict[str, Any]], steps: int,
                    common_rate: float) -> dict[str, Any]:
    """Return the Tier 1 headline (unprefixed): per encoder at the common rate, for vmf and mdn
    the k = 1 eval ΔNLL per dim (mean) against the context-free model of the same family and
    capacity (`<family>_dnll_ctx_k1`) and the context gain, mean NLL/dim at k = 1 minus at the
    longest k (`<family>_dnll_k1_vs_kmax`); the vmf cosine at k = 1 (mean) and the vmf
    free-rollout (mode D) median normalised state error at the last step. An encoder not run
    reads "n/a"."""
    out: dict[str, Any] = {"common_rate": float(common_rate)}
    for enc in ALL_ENCODERS:
        def pick(family: str, col: str) -> Any:
            for r in rows:
                if (r["encoder"], r["rate"], r["family"], r["k"]) == (enc, "common", family, 1) and _num(r.get(col)):
                    return round(float(r[col]), 6)
            return STATUS["undefined"]
        for fam in ("vmf", "mdn"):
            out[f"{enc}.{fam}_dnll_ctx_k1"] = pick(fam, "dnll_ctx_per_dim_mean")
            gain = context_gain(rows, enc, "common", fam)[2]
            out[f"{enc}.{fam}_dnll_k1_vs_kmax"] = round(gain, 6) if _num(gain) else gain
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


def context_lines(rows: list[dict[str, Any]]) -> list[str]:
    """report.txt's headline section: each family against its context-free model of the same
    capacity, the context gain (k = 1 vs the longest k), and the undertrained flags."""
    lines = ["", "What the context adds (the headline): each model against the context-free model of its family",
             "and capacity (same network and mixture size fed a constant, same passes), dNLL/dim on the same",
             "samples (mean / median); gain = mean NLL/dim at k = 1 minus at the longest k (< 0: recent context helps):",
             f"{'encoder':8} {'rate':7} {'model':5} {'k=1 vs ctx-free':>16} {'median':>8} {'longest k':>9} "
             f"{'vs ctx-free':>11} {'gain k=1 vs kmax':>16}"]
    seen = []
    for r in rows:
        key = (r["encoder"], r["rate"], r["family"])
        if key in seen:
            continue
        seen.append(key)
        mine = {x["k"]: x for x in rows if (x["encoder"], x["rate"], x["family"]) == key}
        _, kmax, gain = context_gain(rows, *key)
        one, last = mine.get(1, {}), mine.get(kmax, {})
        lines.append(f"{key[0]:8} {key[1]:7} {key[2]:5} {_fmt(one.get('dnll_ctx_per_dim_mean')):>16} "
                     f"{_fmt(one.get('dnll_ctx_per_dim_median')):>8} {kmax:>9d} "
                     f"{_fmt(last.get('dnll_ctx_per_dim_mean')):>11} {_fmt(gain):>16}")
    flagged = [r for r in rows if r.get("undertrained")]
    if flagged:
        lines += ["", "UNDERTRAINED? mean dNLL > 0 while the median < 0 (most samples gain, a tail loses heavily; "
                      "more passes before reading the mean):"]
        lines += [f"  {r['encoder']} {r['rate']} {r['family']} k={r['k']}: vs baseline mean "
                  f"{_fmt(r.get('dnll_per_dim_mean'))} median {_fmt(r.get('dnll_per_dim_median'))}; vs context-free "
                  f"mean {_fmt(r.get('dnll_ctx_per_dim_mean'))} median {_fmt(r.get('dnll_ctx_per_dim_median'))}"
                  for r in flagged]
    return lines


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
        "The baselines here are weak (vmf: uniform direction x one LogNormal; mdn: one diagonal Gaussian): read",
        "'What the context adds' below for each family against its own context-free model.",
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
    lines += context_lines(rows)
    # name the random-init encoders: the other rows (mel has no weights) used none
    rnd = next((m[len(RANDOM_INIT_BANNER):].strip(" ()") for m in marks if m.startswith(RANDOM_INIT_BANNER)), None)
    sources = [name for flag, name in ((SYNTHETIC_BANNER in marks, "synthetic audio"),
               (rnd is not None, f"random-init weights for {rnd} (their rows only)")) if flag]
    if sources:
        lines += ["", f"These numbers come from {' and '.join(sources)}: a smoke test of the pipeline; "
                      "they support no conclusion about speech or the codecs."]
    return "\n".join(lines) + "\n"
