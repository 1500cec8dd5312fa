"""reason answer metrics and comparisons on hand-built answers with known scores."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.reason import answers, compare
from audioprobe.reason.evaluate import by_type, headline_values, paired


@pytest.mark.parametrize("text,norm", [
    ("The Dog!", "dog"), ("  a   cat, barking. ", "cat barking"), ("An owl", "owl"),
    ("theatre", "theatre"), ("Yes.", "yes"), ("", ""),
])
def test_normalize_drops_case_punctuation_articles_whitespace(text, norm):
    assert answers.normalize(text) == norm


def test_exact_match_after_normalisation():
    assert answers.exact_match("The dog.", "dog") == 1
    assert answers.exact_match("dog barking", "dog") == 0
    assert answers.exact_match("", "dog") == 0


@pytest.mark.parametrize("pred,gold,want", [
    ("B", "B", 1), ("b) dog", "B", 1), ("(C) rain", "C", 1), ("D.", "D", 1), ("A", "B", 0),
    ("dog", "B", 0), ("Bark", "B", 0),  # a word starting with B is not the option B
])
def test_letter_accuracy(pred, gold, want):
    assert answers.letter_correct(pred, gold) == want


def test_letter_and_yes_no_do_not_apply_to_other_rows():
    assert answers.letter_correct("B", "dog") is None
    assert answers.yes_no_correct("yes", "first") is None
    assert answers.kind("B") == "mcq" and answers.kind("no") == "yes_no" and answers.kind("a dog") == "open"


@pytest.mark.parametrize("pred,gold,want", [("yes", "yes", 1), ("Yes, it is", "yes", 1), ("no", "yes", 0),
                                            ("", "no", 0)])
def test_yes_no_accuracy(pred, gold, want):
    assert answers.yes_no_correct(pred, gold) == want


def test_token_f1_known_values():
    assert answers.token_f1("dog barking loudly", "dog barking") == pytest.approx(0.8)  # p 2/3, r 1
    assert answers.token_f1("cat", "dog") == 0.0
    assert answers.token_f1("the dog", "dog") == 1.0
    assert answers.token_f1("", "") == 1.0


def test_bootstrap_ci_brackets_the_mean_and_collapses_on_constants():
    lo, hi = compare.bootstrap_ci(np.ones(50), 500, 0)
    assert lo == hi == 1.0
    x = np.r_[np.ones(30), np.zeros(70)]
    lo, hi = compare.bootstrap_ci(x, 2000, 0)
    assert lo < 0.3 < hi and 0.18 < lo and hi < 0.42


def test_mcnemar_exact_p_on_discordant_pairs():
    a = np.r_[np.ones(8), np.zeros(2), np.ones(5)]
    b = np.r_[np.zeros(8), np.zeros(2), np.ones(5)]
    r = compare.mcnemar(a, b)
    assert (r["only_a"], r["only_b"]) == (8, 0)
    assert r["p_mcnemar"] == pytest.approx(2 * 0.5 ** 8)
    assert compare.mcnemar(a, a)["p_mcnemar"] == 1.0


def test_paired_bootstrap_sign_and_significance():
    rng = np.random.default_rng(0)
    b = (rng.random(200) < 0.3).astype(float)
    a = np.maximum(b, (rng.random(200) < 0.5).astype(float))  # a is never worse, often better
    r = compare.paired_bootstrap(a, b, 1000, 0)
    assert r["diff"] > 0.2 and r["ci_low"] > 0 and r["p_bootstrap"] < 0.01
    same = compare.paired_bootstrap(b, b, 1000, 0)
    assert same["diff"] == 0 and same["p_bootstrap"] == 1.0


def _scores(ems: list[int], task: str = "identify") -> list[dict]:
    return [{"taskname": task, "subtype": "open", "kind": "open", "em": e, "letter": None, "yes_no": None,
             "f1": float(e)} for e in ems]


def test_tables_headline_and_pairs_from_known_scores():
    scores = {"mel": _scores([1, 1, 1, 0]), "blind": _scores([0, 1, 0, 0]), "shuffled_mel": _scores([0, 1, 1, 0])}
    table = by_type(scores, 200, 0)
    overall = {r["arm"]: r["mean"] for r in table if r["group"] == "overall" and r["metric"] == "em"}
    assert overall == {"mel": 0.75, "blind": 0.25, "shuffled_mel": 0.5}
    assert not [r for r in table if r["metric"] in ("letter", "yes_no")]  # never written as 0
    pairs = paired(scores, 200, 0)
    assert [(p["arm_a"], p["arm_b"]) for p in pairs] == [("mel", "blind"), ("mel", "shuffled_mel"),
                                                         ("blind", "shuffled_mel")]
    vals = headline_values(["mel", "blind", "shuffled_mel"], table, pairs, 20)
    assert vals["mel.em"] == 0.75 and vals["mel_minus_blind.em"] == 0.5 and vals["mel_minus_shuffled.em"] == 0.25
    assert vals["mel_minus_blind.p"] == pytest.approx(0.5)  # 2 discordant pairs, both for mel
    assert "mel.em_ci_low" in vals
    small = headline_values(["mel", "blind", "shuffled_mel"], table, pairs, 10)  # no room for CIs
    assert "mel.em_ci_low" not in small and "mel.em" in small
    only = headline_values(["mel"], by_type({"mel": scores["mel"]}, 200, 0), [], 20)
    assert only["mel_minus_blind.em"] == "n/a"  # a missing control is a status, never dropped or 0
