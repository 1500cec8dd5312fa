"""The phase0 PASS/FAIL rule applied to the metrics tables of phase0_metrics (lane README).

PASS iff at least one scheme meets every criterion at the decision lag: VR < vr_max on
train and eval; degradation < degradation_max; |VR_random − 1| <= random_tolerance on
train and eval; VR <= slice_vr_max on the high-energy and medial slices (train and
eval). VR here is `vr`, the origin's definition. Added guards: a criterion whose value
is missing (every sample excluded, or an empty split/slice) fails — an all-excluded
scheme can never pass — and, with `require_low_exclusion`, so does a scheme whose
train or eval excluded mass is flagged (> phase0.metrics.excluded_mass_flag).

Excluded means no number: for a scheme with no included train or eval sample, or (with
`require_low_exclusion`) a flagged one, and for a criterion whose own split × slice is
empty or flagged, the criterion carries status "excluded", no value, and is not met (a
VR of 0.000 over a remnant of one-sample clusters is not a pass of anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecisionRule:
    """Mirrors params phase0.decision."""

    lag: int = 1
    vr_max: float = 0.6
    degradation_max: float = 0.20
    random_tolerance: float = 0.05
    slice_vr_max: float = 0.65
    require_low_exclusion: bool = True


@dataclass(frozen=True)
class Criterion:
    """One row of the decision matrix: a metric key under lag{L}.{scheme}. and its test."""

    name: str
    label: str
    key: str
    op: str  # "<", "<=", "abs1<=" (|v − 1| <=), "false" (flag must be False)
    threshold: str  # DecisionRule field name, or "" for flags
    value_key: str = ""  # what to show beside a flag (the number behind it)


def criteria(rule: DecisionRule) -> list[Criterion]:
    """Return the decision matrix rows, in report order."""
    rows = [
        Criterion("vr_train", "VR train (all)", "train.all.vr", "<", "vr_max"),
        Criterion("vr_eval", "VR eval (all)", "eval.all.vr", "<", "vr_max"),
        Criterion("degradation", "degradation eval vs train", "eval.all.degradation", "<", "degradation_max"),
        Criterion("random_train", "random control VR train", "train.all.random_vr", "abs1<=", "random_tolerance"),
        Criterion("random_eval", "random control VR eval", "eval.all.random_vr", "abs1<=", "random_tolerance"),
        Criterion("high_energy_train", "VR high-energy train", "train.high_energy.vr", "<=", "slice_vr_max"),
        Criterion("high_energy_eval", "VR high-energy eval", "eval.high_energy.vr", "<=", "slice_vr_max"),
        Criterion("medial_train", "VR medial train", "train.medial.vr", "<=", "slice_vr_max"),
        Criterion("medial_eval", "VR medial eval", "eval.medial.vr", "<=", "slice_vr_max"),
    ]
    if rule.require_low_exclusion:
        rows += [
            Criterion("exclusion_train", "excluded mass train", "train.all.excluded_flag", "false", "",
                      "train.all.excluded_mass"),
            Criterion("exclusion_eval", "excluded mass eval", "eval.all.excluded_flag", "false", "",
                      "eval.all.excluded_mass"),
        ]
    return rows


def _check(op: str, value: Any, threshold: float | None) -> bool:
    if value is None or isinstance(value, str):
        return False
    if op == "false":
        return value is False
    if isinstance(value, bool):
        return False
    v = float(value)
    if op == "<":
        return v < threshold
    if op == "<=":
        return v <= threshold
    if op == "abs1<=":
        return abs(v - 1.0) <= threshold
    raise ValueError(f"unknown criterion op {op!r}")


def _has_samples(metrics: dict[str, Any], prefix: str) -> bool:
    n_inc = [metrics.get(f"{prefix}{split}.all.n_included") for split in ("train", "eval")]
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in n_inc)


def scheme_excluded(metrics: dict[str, Any], scheme: str, rule: DecisionRule) -> bool:
    """True when a scheme's VRs are not shown or met: no included train or eval sample, or (with
    `require_low_exclusion`) its train or eval excluded mass is flagged — a VR over a small
    remnant (every cluster a handful of samples) can read 0.000, which is not a result."""
    prefix = f"lag{rule.lag}.{scheme}."
    if not _has_samples(metrics, prefix):
        return True
    return rule.require_low_exclusion and any(
        metrics.get(f"{prefix}{split}.all.excluded_flag") is not False for split in ("train", "eval"))


def _slice_excluded(metrics: dict[str, Any], prefix: str, key: str, rule: DecisionRule) -> bool:
    """True when the criterion's own split × slice has no included sample or (guarded) a flagged mass."""
    split, sl = key.split(".")[:2]
    n_inc = metrics.get(f"{prefix}{split}.{sl}.n_included")
    if n_inc is not None and not n_inc:
        return True
    return rule.require_low_exclusion and metrics.get(f"{prefix}{split}.{sl}.excluded_flag") is True


def decide(metrics: dict[str, Any], schemes: list[str], rule: DecisionRule) -> dict[str, Any]:
    """Return the decision as a flat dict (numbers/strings/bools only) for plots/phase0/report/decision.csv.

    `metrics` maps "lag{L}.{scheme}.{split}.{slice}.{metric}" to values (summary.lookup).
    Keys: decision ("PASS"/"FAIL"), pass, lag, passing_schemes (comma list), and per
    scheme `<scheme>.pass`, `<scheme>.<criterion>` (bool) and `<scheme>.<criterion>_value`
    (when the metric exists), plus the thresholds used.
    """
    out: dict[str, Any] = {"lag": rule.lag}
    passing = []
    for scheme in schemes:
        prefix = f"lag{rule.lag}.{scheme}."
        ok_all = True
        gone = scheme_excluded(metrics, scheme, rule)
        out[f"{scheme}.excluded"] = gone
        for c in criteria(rule):
            value = metrics.get(prefix + c.key)
            thr = getattr(rule, c.threshold) if c.threshold else None
            if c.op != "false" and (gone or _slice_excluded(metrics, prefix, c.key, rule)):
                # Excluded: the number describes a remnant (or nothing) and is neither shown nor met.
                out[f"{scheme}.{c.name}"] = False
                out[f"{scheme}.{c.name}_status"] = "excluded"
                ok_all = False
                continue
            ok = _check(c.op, value, thr)
            out[f"{scheme}.{c.name}"] = ok
            shown = metrics.get(prefix + c.value_key) if c.value_key else value
            if shown is not None and not isinstance(shown, str):
                out[f"{scheme}.{c.name}_value"] = shown
            ok_all &= ok
        out[f"{scheme}.has_samples"] = _has_samples(metrics, prefix)
        ok_all &= out[f"{scheme}.has_samples"]
        out[f"{scheme}.pass"] = ok_all
        if ok_all:
            passing.append(scheme)
    out["pass"] = bool(passing)
    out["decision"] = "PASS" if passing else "FAIL"
    out["passing_schemes"] = ",".join(passing)
    out["schemes"] = ",".join(schemes)
    for name in ("vr_max", "degradation_max", "random_tolerance", "slice_vr_max", "require_low_exclusion"):
        out[f"rule.{name}"] = getattr(rule, name)
    return out


def decision_rows(decision: dict[str, Any], schemes: list[str], rule: DecisionRule) -> list[dict[str, Any]]:
    """Return the decision matrix as table rows: scheme, criterion, value (None = n/a), threshold, met."""
    rows = []
    for scheme in schemes:
        for c in criteria(rule):
            value = decision.get(f"{scheme}.{c.name}_value")
            rows.append({
                "lag": rule.lag, "scheme": scheme, "criterion": c.name,
                "value": None if value is None else float(value),
                "status": decision.get(f"{scheme}.{c.name}_status", "" if value is not None else "n/a"),
                "op": c.op, "threshold": float(getattr(rule, c.threshold)) if c.threshold else None,
                "met": bool(decision.get(f"{scheme}.{c.name}")),
            })
        rows.append({"lag": rule.lag, "scheme": scheme, "criterion": "has_samples", "value": None, "status": "",
                     "op": "true", "threshold": None, "met": bool(decision.get(f"{scheme}.has_samples"))})
        rows.append({"lag": rule.lag, "scheme": scheme, "criterion": "pass", "value": None,
                     "status": "excluded" if decision.get(f"{scheme}.excluded") else "", "op": "all",
                     "threshold": None, "met": bool(decision.get(f"{scheme}.pass"))})
    return rows
