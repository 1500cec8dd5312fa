"""Test-split evaluation: batched greedy answers, per-row scores, tables by question type, paired tests.

Decoding budget: `reason.eval.max_new_tokens` is `auto` (the longest gold answer of the
evaluated split in tokens, plus the EOS that ends it) or a number, refused in one line when it
cannot cover that answer (a budget shorter than the gold scores a right answer as wrong, and
does so unevenly across question types). An answer still running at the budget is `cut`:
counted per arm and per type, never silently scored.

Per question type, every arm pair gets the paired tests of the overall table (paired bootstrap
and McNemar, with Holm-adjusted McNemar p across the types of that pair), beside a
majority-answer baseline: the most frequent gold answer of the type in the *train* split,
scored on the test rows, i.e. what text alone (knowing the type) gets without any model.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import torch

from audioprobe.runtime.errors import ParamsError
from audioprobe.reason import answers, compare
from audioprobe.reason.batching import answer_ids, prompt_ids
from audioprobe.reason.decode import greedy_decode
from audioprobe.reason.mapper import AudioMapper

METRICS = ("em", "letter", "yes_no", "f1", "cut")
EVAL_SPLIT = "test"
AUTO = "auto"


def check_split(split: str, param: str = "reason.eval.split") -> None:
    """Refuse any split but test: a score on training (or tuning) data is not a result."""
    if split != EVAL_SPLIT:
        raise ParamsError(
            f"params.yaml: {param} = {split!r}: reason_eval reports on the test split only (the origin's "
            "99.4 % was measured on its training data); set it to test"
        )


def decode_budget(tok, rows: list[dict], setting: int | str, split: str,
                  param: str = "reason.eval.max_new_tokens") -> tuple[int, int]:
    """Return (budget, need): need = the longest gold answer of `rows` in tokens + its EOS.

    `setting` auto gives budget = need; a number below need is refused in one line naming the param,
    the row and what to set.
    """
    lengths = [len(answer_ids(tok, r["answer"])) for r in rows]
    i = int(np.argmax(lengths))
    need = lengths[i]
    if setting == AUTO:
        return need, need
    if int(setting) < need:
        raise ParamsError(
            f"params.yaml: {param} = {setting} cannot cover the longest gold answer of the {split} split "
            f"({need - 1} tokens + EOS, {rows[i]['taskname']} row {i}: {rows[i]['answer']!r}); set it to "
            f">= {need} or to {AUTO}"
        )
    return int(setting), need


@torch.no_grad()
def predict(lm, tok, mapper: AudioMapper, rows: list[dict], inputs: list[list[torch.Tensor]],
            batch_size: int, max_new_tokens: int) -> tuple[list[str], list[bool]]:
    """Return the decoded answer per row (greedy, left-padded batches, KV cache, stop at EOS) and
    whether each was cut: still running after `max_new_tokens` tokens (no EOS within the budget)."""
    mapper.eval()
    prompts = [prompt_ids(tok, r["input"]) for r in rows]
    sizes = [len(p) + sum(c.shape[0] for c in x) for p, x in zip(prompts, inputs)]
    order = np.argsort(sizes, kind="stable")  # similar lengths share a batch: less padding
    out: list[str] = [""] * len(rows)
    cut: list[bool] = [False] * len(rows)
    for b in range(0, len(rows), batch_size):
        idx = order[b:b + batch_size].tolist()
        prefixes = mapper([inputs[i] for i in idx])
        toks = greedy_decode(lm, prefixes, [prompts[i] for i in idx], tok.eos_token_id, tok.pad_token_id,
                             max_new_tokens)
        for i, t in zip(idx, toks):
            out[i] = tok.decode(t, skip_special_tokens=True).strip()
            cut[i] = len(t) >= max_new_tokens  # EOS takes a step and is not returned: a stopped row is shorter
    return out, cut


def score_rows(rows: list[dict], preds: list[str], cut: list[bool] | None = None) -> list[dict]:
    """Return per-row scores (answers.score) with the row's taskname/subtype and `cut` (0/1)."""
    cut = cut or [False] * len(rows)
    return [{"taskname": r["taskname"], "subtype": r["subtype"], **answers.score(p, r["answer"]), "cut": int(c)}
            for r, p, c in zip(rows, preds, cut)]


def majority_answers(train_rows: list[dict]) -> dict[str, str]:
    """Return {taskname: its most frequent normalised gold answer in these (train) rows}; ties: the
    alphabetically first, so the baseline never depends on row order."""
    counts: dict[str, Counter] = {}
    for r in train_rows:
        counts.setdefault(r["taskname"], Counter())[answers.normalize(r["answer"])] += 1
    return {t: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for t, c in counts.items()}


def majority_scores(rows: list[dict], majority: dict[str, str]) -> list[dict]:
    """Per-row scores of answering every row with its type's train-split majority answer (a type the
    train split lacks is answered with the empty string, i.e. wrong)."""
    return score_rows(rows, [majority.get(r["taskname"], "") for r in rows])


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
                vals = np.array([rows[i][m] for i in idx if rows[i].get(m) is not None], dtype=np.float64)
                if vals.size == 0:
                    continue
                lo, hi = compare.bootstrap_ci(vals, n_boot, seed)
                out.append({"arm": arm, "group": group, "value": value, "metric": m, "n": int(vals.size),
                            "mean": round(float(vals.mean()), 6), "ci_low": round(lo, 6), "ci_high": round(hi, 6)})
    return out


def _pair(a: str, b: str, sa: list[dict], sb: list[dict], idx: list[int], n_boot: int, seed: int,
          metric: str) -> dict:
    xa = np.array([sa[i][metric] for i in idx], dtype=np.float64)
    xb = np.array([sb[i][metric] for i in idx], dtype=np.float64)
    pb = compare.paired_bootstrap(xa, xb, n_boot, seed)
    mc = compare.mcnemar(xa, xb) if metric != "f1" else {"only_a": None, "only_b": None, "p_mcnemar": None}
    return {"arm_a": a, "arm_b": b, "metric": metric, "n": int(xa.size),
            **{k: round(v, 6) if isinstance(v, float) else v for k, v in {**pb, **mc}.items()}}


def paired(scores: dict[str, list[dict]], n_boot: int, seed: int, metric: str = "em") -> list[dict]:
    """Return every arm pair's paired comparison on the same rows: diff, CI, bootstrap p, McNemar p."""
    out = []
    for a, b in combinations(list(scores), 2):
        out.append(_pair(a, b, scores[a], scores[b], list(range(len(scores[a]))), n_boot, seed, metric))
    return out


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given, capped at 1)."""
    order = np.argsort(pvalues, kind="stable")
    m, running, out = len(pvalues), 0.0, [0.0] * len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def paired_by_type(scores: dict[str, list[dict]], n_boot: int, seed: int, metric: str = "em") -> list[dict]:
    """Return every arm pair's paired comparison within each question type (taskname), with
    `p_mcnemar_holm`: McNemar's p Holm-adjusted across the types of that pair."""
    first = next(iter(scores.values()))
    types = sorted({r["taskname"] for r in first})
    out = []
    for a, b in combinations(list(scores), 2):
        block = [{"taskname": t, **_pair(a, b, scores[a], scores[b],
                                         [i for i, r in enumerate(first) if r["taskname"] == t], n_boot, seed, metric)}
                 for t in types]
        if metric != "f1":  # McNemar needs 0/1 outcomes
            for row, p in zip(block, holm([r["p_mcnemar"] for r in block])):
                row["p_mcnemar_holm"] = round(p, 6)
        out += block
    return out


def headline_values(arms: list[str], table: list[dict], pairs: list[dict], key_budget: int,
                    decode: dict | None = None) -> dict:
    """Return the headline numbers: per arm EM (+ CI when the key budget allows), the first encoder's
    margins and, with `decode`, the decoding budget and the answers cut at it (all arms together).

    Margins: the first encoder arm minus `blind` and minus its own `shuffled_` control,
    each with the McNemar p-value; a control that is not configured gives STATUS n/a.
    """
    from audioprobe.runtime.headline import STATUS

    overall = {r["arm"]: r for r in table if r["group"] == "overall" and r["metric"] == "em"}
    encoders = [a for a in arms if a != "blind" and not a.startswith("shuffled_")]
    lead = encoders[0] if encoders else None
    margin_keys = 4 if lead else 0
    tail = {} if decode is None else {"decode_budget": int(decode["budget"]),
                                      "cut_answers": int(sum(decode["cut"].values()))}
    with_ci = 3 * len(arms) + margin_keys + len(tail) <= key_budget
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
    return out | tail
