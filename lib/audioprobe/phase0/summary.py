"""phase0 results as tables (plots/phase0/*.csv) and the handful of headline numbers.

The detailed results are plain committed tables; the headline (metrics/phase0.json) is
built from them by `headline_values`, never the other way round:

- tables.csv: one row per lag × scheme × split × slice with TABLE_METRICS
- schemes.csv: one row per lag × scheme with SCHEME_METRICS (cluster counts, fit sizes)
- lookup(): the rows of tables.csv + schemes.csv as {"lag{L}.{scheme}.{split}.{slice}.{metric}": v}
  (and "lag{L}.{scheme}.{metric}"), the keys the decision rule reads.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from audioprobe.runtime.headline import STATUS
from audioprobe.runtime.provenance import RANDOM_INIT

# Every scheme the lane knows; headline keys exist for each one whether or not it ran
# (a scheme left out of phase0.conditioning.schemes reads "n/a"), so key sets never change.
ALL_SCHEMES = ("mean_vq64", "pca8_vq256", "pca8_quartile")

INT_METRICS = ("n", "n_included", "n_speakers")
BOOL_METRICS = ("excluded_flag",)
TABLE_METRICS = (
    "n", "n_included", "excluded_mass", "excluded_flag", "vr", "vr_train_means", "random_vr",
    "random_vr_train_means", "random_vr_expected", "degradation", "degradation_train_means", "entropy_h",
    "entropy_h_cond", "entropy_reduction", "entropy_reduction_nats", "random_entropy_reduction_nats",
    "entropy_gain_nats", "n_speakers", "speaker_vr_mean", "speaker_vr_std", "speaker_vr_train_means_mean",
    "speaker_vr_train_means_std",
)
SCHEME_METRICS = ("k", "k_nonempty", "k_effective", "fit_samples", "inertia_per_sample", "kmeans_n_iter",
                  "pca_fit_samples", "pca_explained_variance_ratio_sum")
SCHEME_INT_METRICS = ("k", "k_nonempty", "k_effective", "fit_samples", "kmeans_n_iter", "pca_fit_samples")


def table_rows(lag: int, metrics: dict) -> list[dict]:
    """Return one row per scheme × split × slice with the TABLE_METRICS columns (None = blank)."""
    rows = []
    for scheme, m in metrics.items():
        for split, per_slice in m.items():
            if not isinstance(per_slice, dict):
                continue
            for sl, vals in per_slice.items():
                rows.append({"lag": lag, "scheme": scheme, "split": split, "slice": sl,
                             **{k: vals.get(k) for k in TABLE_METRICS}})
    return rows


def scheme_rows(lag: int, metrics: dict, lag_info: dict) -> list[dict]:
    """Return one row per scheme of one lag: cluster counts and fit summaries (None = n/a)."""
    pca = lag_info.get("pca", {})
    rows = []
    for scheme, m in metrics.items():
        fit = lag_info.get(scheme, {})
        rows.append({
            "lag": lag, "scheme": scheme, "k": m.get("k"), "k_nonempty": m.get("k_nonempty"),
            "k_effective": m.get("k_effective"), "fit_samples": fit.get("fit_samples"),
            "inertia_per_sample": fit.get("inertia_per_sample"), "kmeans_n_iter": fit.get("n_iter"),
            "pca_fit_samples": pca.get("fit_samples") if scheme.startswith("pca") else None,
            "pca_explained_variance_ratio_sum": (pca.get("explained_variance_ratio_sum")
                                                 if scheme.startswith("pca") else None),
        })
    return rows


def table_schema() -> dict[str, Any]:
    """polars dtypes of tables.csv (so an all-blank column still reads as numbers)."""
    schema: dict[str, Any] = {"lag": pl.Int64, "scheme": pl.String, "split": pl.String, "slice": pl.String}
    for k in TABLE_METRICS:
        schema[k] = pl.Int64 if k in INT_METRICS else pl.Boolean if k in BOOL_METRICS else pl.Float64
    return schema


def scheme_schema() -> dict[str, Any]:
    """polars dtypes of schemes.csv."""
    schema: dict[str, Any] = {"lag": pl.Int64, "scheme": pl.String}
    for k in SCHEME_METRICS:
        schema[k] = pl.Int64 if k in SCHEME_INT_METRICS else pl.Float64
    return schema


def lookup(table: list[dict], schemes: list[dict] | None = None) -> dict[str, Any]:
    """Return {dotted key: value} from tables.csv rows (and schemes.csv rows); blanks are left out."""
    out: dict[str, Any] = {}
    for r in table:
        pre = f"lag{r['lag']}.{r['scheme']}.{r['split']}.{r['slice']}."
        out.update({pre + k: r[k] for k in TABLE_METRICS if r.get(k) is not None})
    for r in schemes or []:
        pre = f"lag{r['lag']}.{r['scheme']}."
        out.update({pre + k: r[k] for k in SCHEME_METRICS if r.get(k) is not None})
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def quotable(values: dict[str, Any], scheme: str, lag: int, flag: float) -> bool:
    """True when a scheme's VR may be quoted: it has included samples on train and eval, and
    neither split's excluded mass is over the flag (a VR over a small remnant overstates)."""
    for split in ("train", "eval"):
        mass = values.get(f"lag{lag}.{scheme}.{split}.all.excluded_mass")
        if not _number(mass) or mass > flag or not values.get(f"lag{lag}.{scheme}.{split}.all.n_included"):
            return False
    return _number(values.get(f"lag{lag}.{scheme}.eval.all.vr"))


def excluded(values: dict[str, Any], scheme: str, lag: int, flag: float) -> bool:
    """True when a scheme is excluded: no included train or eval sample, or the excluded mass of
    either split over the flag. Its VRs and entropy gains describe a remnant, so reports show none."""
    for split in ("train", "eval"):
        mass = values.get(f"lag{lag}.{scheme}.{split}.all.excluded_mass")
        if not values.get(f"lag{lag}.{scheme}.{split}.all.n_included") or not _number(mass) or mass > flag:
            return True
    return False


def shows_numbers(values: dict[str, Any], decision: dict[str, Any], scheme: str, lag: int, flag: float) -> bool:
    """True unless the scheme is excluded; a scheme that passes (possible only with the origin's rule,
    `require_low_exclusion: false`) keeps the numbers its pass rests on."""
    return not excluded(values, scheme, lag, flag) or bool(decision.get(f"{scheme}.pass"))


def best_scheme(values: dict[str, Any], decision: dict[str, Any], schemes: list[str], lag: int,
                flag: float) -> tuple[str, float] | None:
    """Return (scheme, eval VR) the verdict may quote, or None.

    PASS: the passing scheme with the lowest eval VR. FAIL: the lowest eval VR among
    schemes whose excluded mass is within the flag, never a flagged one.
    """
    passing = [s for s in str(decision.get("passing_schemes", "")).split(",") if s]
    pool = passing or [s for s in schemes if quotable(values, s, lag, flag)]
    cands = [(s, float(values[f"lag{lag}.{s}.eval.all.vr"])) for s in pool
             if _number(values.get(f"lag{lag}.{s}.eval.all.vr"))]
    return min(cands, key=lambda t: t[1]) if cands else None


def net_effect(values: dict[str, Any], scheme: str, lag: int) -> float | None:
    """Return the share of eval next-step variance the clusters explain beyond their permuted control.

    (1 − VR) − (1 − VR_random) = VR_random − VR on the same eval samples: the in-sample VR
    rewards small clusters (the control, with the same cluster sizes and no structure,
    explains 1 − VR_random by construction), so only the difference is an effect.
    None when the control is undefined.
    """
    vr = values.get(f"lag{lag}.{scheme}.eval.all.vr")
    rnd = values.get(f"lag{lag}.{scheme}.eval.all.random_vr")
    if not isinstance(vr, (int, float)) or not isinstance(rnd, (int, float)):
        return None
    return float(rnd) - float(vr)


def _net(values: dict[str, Any], scheme: str, lag: int) -> Any:
    net = net_effect(values, scheme, lag)
    return STATUS["undefined"] if net is None else round(net, 6)


def _value(values: dict[str, Any], key: str, excluded: bool) -> Any:
    v = values.get(key)
    if _number(v):
        return float(v)
    return STATUS["excluded"] if excluded else STATUS["undefined"]


def headline_values(
    values: dict[str, Any], decision: dict[str, Any], schemes: list[str], lag: int, flag: float
) -> dict[str, Any]:
    """Return the phase0 headline (unprefixed keys; audioprobe.runtime.headline adds `phase0.` and provenance).

    decision, lag, best_scheme, best_eval_vr, best_explained_net_of_control (the verdict's
    number: the best scheme's eval VR_random − VR, the share of next-step variance it explains
    beyond its permuted control), and per scheme of ALL_SCHEMES at the decision
    lag: eval_vr, eval_vr_random (its permuted control), excluded (excluded mass over the
    flag on train or eval) and entropy_gain_nats (eval nats/dim reduction minus the
    control's). An excluded scheme (`excluded`: true) reads "excluded" in its three numbers,
    never a number computed on its remnant; one that did not run, "n/a".
    """
    best = best_scheme(values, decision, schemes, lag, flag)
    out: dict[str, Any] = {
        "decision": str(decision["decision"]),
        "lag": int(lag),
        "best_scheme": best[0] if best else STATUS["undefined"],
        "best_eval_vr": best[1] if best else STATUS["undefined"],
        "best_explained_net_of_control": _net(values, best[0], lag) if best else STATUS["undefined"],
    }
    for s in ALL_SCHEMES:
        pre = f"lag{lag}.{s}."
        if s not in schemes:
            for k in ("eval_vr", "eval_vr_random", "excluded", "entropy_gain_nats"):
                out[f"{s}.{k}"] = STATUS["undefined"]
            continue
        gone = excluded(values, s, lag, flag)
        out[f"{s}.excluded"] = gone
        hide = not shows_numbers(values, decision, s, lag, flag)
        for key, metric in (("eval_vr", "vr"), ("eval_vr_random", "random_vr"),
                            ("entropy_gain_nats", "entropy_gain_nats")):
            out[f"{s}.{key}"] = STATUS["excluded"] if hide else _value(values, f"{pre}eval.all.{metric}", gone)
    return out


def latents_provenance(attrs: dict) -> dict[str, Any]:
    """Return the latents' provenance from their store's encoder.json: encoder, weights, data."""
    prov = {k: str(v) for k, v in dict(attrs.get("provenance", {})).items()}
    return {
        "encoder": str(attrs.get("name", prov.get("name", "unknown"))),
        "dim": int(attrs.get("dim", 0)),
        "frame_rate": float(attrs.get("frame_rate", 0.0)),
        "hop": int(attrs.get("hop", 0)),
        "sample_rate": int(attrs.get("sample_rate", 0)),
        "weights": prov,
        "data": {k: str(v) for k, v in dict(attrs.get("data", {})).items()},
        "random_init": is_random_init(attrs),
    }


def is_random_init(attrs: dict) -> bool:
    """True when the encoder that made the latents had random (untrained) weights."""
    return str(dict(attrs.get("provenance", {})).get("weights", "")) == RANDOM_INIT


def headline_provenance(latents: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Return (data, weights, extra values) for audioprobe.runtime.headline from latents_provenance().

    data = {"librispeech": {source, sha256}}; weights = {"encoder": {source, sha256}}, or
    {} plus the value weights.encoder = "none" for an encoder without weights (log-mel).
    """
    data = {"librispeech": {"source": latents["data"].get("source", "unknown"),
                            "sha256": latents["data"].get("sha256", "unknown")}}
    w = latents["weights"]
    source, sha = w.get("weights", "none"), w.get("sha256", "none")
    if source in ("", "none"):
        return data, {}, {"weights.encoder": f"none ({latents['encoder']})"}
    if source == RANDOM_INIT:
        return data, {"encoder": {"source": RANDOM_INIT, "sha256": None}}, {}
    return data, {"encoder": {"source": source, "sha256": sha}}, {}
