"""Test-split evaluation: batched greedy answers, per-row scores, tables by question type, paired tests."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch

from audioprobe.runtime.errors import ParamsError
from audioprobe.reason import answers, compare
from audioprobe.reason.batching import prompt_ids
from audioprobe.reason.decode import greedy_decode
from audioprobe.reason.mapper import AudioMapper

METRICS = ("em", "letter", "yes_no", "f1")
EVAL_SPLIT = "test"


def check_split(split: str, param: str = "reason.eval.split") -> None:
    """Refuse any split but test: a score on training (or tuning) data is not a result."""
    if split != EVAL_SPLIT:
        raise ParamsError(
            f"params.yaml: {param} = {split!r}: reason_eval reports on the test split only (the origin's "
            "99.4 % was measured on its training data); set it to test"
        )


@torch.no_grad()
def predict(lm, tok, mapper: AudioMapper, rows: list[dict], inputs: list[list[torch.Tensor]],
            batch_size: int, max_new_tokens: int) -> list[str]:
    """Return the decoded answer per row (greedy, left-padded batches, KV cache, stop at EOS)."""
    mapper.eval()
    prompts = [prompt_ids(tok, r["input"]) for r in rows]
    sizes = [len(p) + sum(c.shape[0] for c in x) for p, x in zip(prompts, inputs)]
    order = np.argsort(sizes, kind="stable")  # similar lengths share a batch: less padding
    out: list[str] = [""] * len(rows)
    for b in range(0, len(rows), batch_size):
        idx = order[b:b + batch_size].tolist()
        prefixes = mapper([inputs[i] for i in idx])
        toks = greedy_decode(lm, prefixes, [prompts[i] for i in idx], tok.eos_token_id, tok.pad_token_id,
                             max_new_tokens)
        for i, t in zip(idx, toks):
            out[i] = tok.decode(t, skip_special_tokens=True).strip()
    return out


def score_rows(rows: list[dict], preds: list[str]) -> list[dict]:
    """Return per-row scores (answers.score) with the row's taskname/subtype."""
    return [{"taskname": r["taskname"], "subtype": r["subtype"], **answers.score(p, r["answer"])}
            for r, p in zip(rows, preds)]


def by_type(scores: dict[str, list[dict]], n_boot: int, seed: int) -> list[dict]:
    """Return table rows {arm, group, value, metric, n, mean, ci_low, ci_high}: overall, per taskname, per subtype.

    A metric that applies to no row of a group (e.g. letter accuracy on yes/no rows) is
    left out of that group rather than written as 0.
    """
    out = []
    for arm, rows in scores.items():
        groups = [("overall", "all", list(range(len(rows))))]
        for key in ("taskname", "subtype"):
            for v in sorted({r[key] for r in rows}):
                groups.append((key, v, [i for i, r in enumerate(rows) if r[key] == v]))
        for group, value, idx in groups:
            for m in METRICS:
                vals = np.array([rows[i][m] for i in idx if rows[i][m] is not None], dtype=np.float64)
                if vals.size == 0:
                    continue
                lo, hi = compare.bootstrap_ci(vals, n_boot, seed)
                out.append({"arm": arm, "group": group, "value": value, "metric": m, "n": int(vals.size),
                            "mean": round(float(vals.mean()), 6), "ci_low": round(lo, 6), "ci_high": round(hi, 6)})
    return out


def paired(scores: dict[str, list[dict]], n_boot: int, seed: int, metric: str = "em") -> list[dict]:
    """Return every arm pair's paired comparison on the same rows: diff, CI, bootstrap p, McNemar p."""
    out = []
    for a, b in combinations(list(scores), 2):
        xa = np.array([r[metric] for r in scores[a]], dtype=np.float64)
        xb = np.array([r[metric] for r in scores[b]], dtype=np.float64)
        pb = compare.paired_bootstrap(xa, xb, n_boot, seed)
        mc = compare.mcnemar(xa, xb) if metric != "f1" else {"only_a": None, "only_b": None, "p_mcnemar": None}
        out.append({"arm_a": a, "arm_b": b, "metric": metric, "n": int(xa.size),
                    **{k: round(v, 6) if isinstance(v, float) else v for k, v in {**pb, **mc}.items()}})
    return out


def headline_values(arms: list[str], table: list[dict], pairs: list[dict], key_budget: int) -> dict:
    """Return the headline numbers: per arm EM (+ CI when the key budget allows) and the first encoder's margins.

    Margins: the first encoder arm minus `blind` and minus its own `shuffled_` control,
    each with the McNemar p-value; a control that is not configured gives STATUS n/a.
    """
    from audioprobe.runtime.headline import STATUS

    overall = {r["arm"]: r for r in table if r["group"] == "overall" and r["metric"] == "em"}
    encoders = [a for a in arms if a != "blind" and not a.startswith("shuffled_")]
    lead = encoders[0] if encoders else None
    margin_keys = 4 if lead else 0
    with_ci = 3 * len(arms) + margin_keys <= key_budget
    out: dict = {}
    for a in arms:
        out[f"{a}.em"] = overall[a]["mean"]
        if with_ci:
            out[f"{a}.em_ci_low"] = overall[a]["ci_low"]
            out[f"{a}.em_ci_high"] = overall[a]["ci_high"]
    if lead:
        for ctrl, name in (("blind", "blind"), (f"shuffled_{lead}", "shuffled")):
            pair = next((p for p in pairs if {p["arm_a"], p["arm_b"]} == {lead, ctrl}), None)
            if pair is None:
                out[f"{lead}_minus_{name}.em"] = STATUS["undefined"]
                out[f"{lead}_minus_{name}.p"] = STATUS["undefined"]
                continue
            sign = 1.0 if pair["arm_a"] == lead else -1.0
            out[f"{lead}_minus_{name}.em"] = round(sign * pair["diff"], 6)
            out[f"{lead}_minus_{name}.p"] = pair["p_mcnemar"]
    return out
