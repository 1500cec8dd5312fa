"""reason_eval's decoding budget, cut answers, per-type paired tests and majority baseline, report."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from scipy import stats

from audioprobe.reason import lm as lmlib
from audioprobe.reason.batching import answer_ids
from audioprobe.reason.evaluate import (
    by_type,
    decode_budget,
    holm,
    majority_answers,
    majority_scores,
    paired_by_type,
    predict,
    score_rows,
)
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.params import ReasonEval, ReasonLM
from audioprobe.reason.report import report_markdown
from audioprobe.runtime.errors import ParamsError

TEXTS = ["Question: What is the main sound?\nAnswer: a dog barking loudly near a busy road at night",
         "Question: Is there rain?\nAnswer: yes", "Question: Which is louder?\nAnswer: first"] * 10


@pytest.fixture(scope="module")
def tok():
    return lmlib.build_tokenizer(TEXTS, 300)


def _row(task: str, answer: str, q: str = "Is there rain?") -> dict:
    return {"taskname": task, "subtype": task, "input": q, "answer": answer}


def test_auto_budget_covers_the_longest_gold_answer_and_a_short_budget_is_refused_in_one_line(tok):
    rows = [_row("yes_no", "yes"), _row("open", "a dog barking loudly near a busy road at night"), _row("cmp", "first")]
    need = len(answer_ids(tok, rows[1]["answer"]))  # answer tokens + EOS
    assert need >= 5  # the long answer needs more than the old fixed budget of 4-8 on this tokenizer
    assert decode_budget(tok, rows, "auto", "test") == (need, need)
    assert decode_budget(tok, rows, need + 3, "test") == (need + 3, need)
    with pytest.raises(ParamsError) as e:
        decode_budget(tok, rows, need - 1, "test")
    msg = str(e.value)
    assert "\n" not in msg and "reason.eval.max_new_tokens" in msg and f">= {need}" in msg and "open row 1" in msg
    assert ReasonEval().max_new_tokens == "auto"  # the default never cuts a gold answer
    assert ReasonEval(max_new_tokens="auto").max_new_tokens == "auto" and ReasonEval(max_new_tokens=12).max_new_tokens == 12
    for bad in (0, "longest"):
        with pytest.raises(ValueError):
            ReasonEval(max_new_tokens=bad)


def test_predict_flags_answers_still_running_at_the_budget(tok):
    torch.manual_seed(0)
    model = lmlib.tiny_llama(tok, ReasonLM(hidden=32, intermediate=64, heads=4, kv_heads=2, layers=2)).eval()
    with torch.no_grad():  # bias the head away from EOS: every row runs to the budget
        model.lm_head.weight[tok.eos_token_id] = -10.0
    mapper = AudioMapper(4, 32)
    rows = [_row("yes_no", "yes"), _row("cmp", "first", "Which is louder?")]
    inputs = [[torch.randn(3, 4)], [torch.randn(2, 4)]]
    answers, cut = predict(model.requires_grad_(False), tok, mapper, rows, inputs, 2, 3)
    assert cut == [True, True]
    with torch.no_grad():  # now EOS always wins: every row stops at once, none is cut
        model.lm_head.weight[tok.eos_token_id] = 10.0
    answers, cut = predict(model, tok, mapper, rows, inputs, 2, 3)
    assert cut == [False, False] and answers == ["", ""]
    scored = score_rows(rows, ["yes", "second"], [False, True])
    assert [s["cut"] for s in scored] == [0, 1] and [s["em"] for s in scored] == [1, 0]


def test_majority_answer_per_type_comes_from_train_with_alphabetical_ties():
    train = [_row("yes_no", "Yes"), _row("yes_no", "no"), _row("yes_no", "yes."),
             _row("cmp", "second"), _row("cmp", "first")]  # cmp: a tie, broken alphabetically
    maj = majority_answers(train)
    assert maj == {"yes_no": "yes", "cmp": "first"}
    test = [_row("yes_no", "yes"), _row("yes_no", "no"), _row("cmp", "first"), _row("open", "dog")]
    assert [s["em"] for s in majority_scores(test, maj)] == [1, 0, 1, 0]  # an unseen type is never right


def test_holm_adjustment_matches_the_hand_computed_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def _scores(ems: list[int], types: list[str]) -> list[dict]:
    return [{"taskname": t, "subtype": t, "em": e, "letter": None, "yes_no": None, "f1": float(e), "cut": 0,
             "kind": "open"} for e, t in zip(ems, types)]


def test_paired_tests_per_type_have_known_mcnemar_counts_and_p():
    types = ["audio"] * 12 + ["text"] * 8
    a = _scores([1] * 10 + [0, 0] + [1] * 8, types)  # audio arm: right on 10 of 12 audio rows, 8 of 8 text
    b = _scores([0] * 12 + [1] * 8, types)  # blind: 0 of 12 audio rows, 8 of 8 text
    rows = {(r["arm_a"], r["taskname"]): r for r in paired_by_type({"mel": a, "blind": b}, 200, 0)}
    audio, text = rows[("mel", "audio")], rows[("mel", "text")]
    assert (audio["only_a"], audio["only_b"], audio["n"]) == (10, 0, 12)
    assert audio["diff"] == pytest.approx(10 / 12, abs=1e-6)
    p_audio = stats.binomtest(10, 10, 0.5).pvalue
    assert audio["p_mcnemar"] == pytest.approx(p_audio, abs=1e-6)
    assert (text["only_a"], text["only_b"], text["diff"], text["p_mcnemar"]) == (0, 0, 0.0, 1.0)
    assert audio["p_mcnemar_holm"] == pytest.approx(min(1.0, 2 * p_audio), abs=1e-6)
    assert text["p_mcnemar_holm"] == 1.0


def test_report_has_the_per_type_table_majority_baseline_and_cut_answers():
    types = ["audio"] * 12 + ["text"] * 8
    scores = {"mel": _scores([1] * 10 + [0, 0] + [1] * 8, types), "blind": _scores([0] * 12 + [1] * 8, types)}
    table = by_type(scores, 100, 0)
    majority = {"majority": _scores([0] * 12 + [1] * 8, types)}
    baseline = [r | {"arm": "majority"} for r in by_type(majority, 100, 0) if r["metric"] == "em"]
    text = report_markdown(["mel", "blind"], table, [], {"name": "x", "source": "random-init", "sha256": "0" * 64},
                           {}, [], 20, baseline=baseline, type_pairs=paired_by_type(scores, 100, 0),
                           decode={"budget": 9, "need": 9, "cut": {"mel": 2, "blind": 0}})
    assert "## By question type" in text
    assert "| audio | 12 | 0.0 | 83.3 [" in text and "| text | 8 | 100.0 | 100.0 [" in text
    assert "| mel | blind | audio | 12 | +83.3 |" in text
    assert "at most 9 new tokens" in text
    assert text.count("| 2 |") >= 1 and "| majority (train answer per type) | 40.0 |" in text


def test_an_arm_or_encoder_added_to_the_lists_changes_no_param_of_the_stages_already_there():
    import yaml

    from audioprobe.reason.params import ReasonEncode, ReasonTrain
    stages = yaml.safe_load((Path(__file__).resolve().parents[3] / "dvc.yaml").read_text())["stages"]
    for stage, group, schema, listings in (("reason_encode", "reason.encode", ReasonEncode, {"encoders"}),
                                           ("reason_train", "reason.train", ReasonTrain, {"audio_arms", "shuffled_arms"}),
                                           ("reason_train_shuffled", "reason.train", ReasonTrain,
                                            {"audio_arms", "shuffled_arms"}),
                                           ("reason_train_blind", "reason.train", ReasonTrain,
                                            {"audio_arms", "shuffled_arms"})):
        spec = stages[stage].get("do", stages[stage])
        listed = [p for p in spec["params"] if isinstance(p, str)]
        assert group not in listed and not {f"{group}.{x}" for x in listings} & set(listed), stage  # no list dep
        want = {f"{group}.{f}" for f in schema.model_fields if f not in listings}
        assert want <= set(listed), (stage, want - set(listed))  # every other field still is one


def test_each_arm_stage_depends_on_the_features_it_reads_only():
    """reason_train@<enc> and reason_train_shuffled@<enc> read data/reason/features/<enc>; blind reads none."""
    import yaml

    stages = yaml.safe_load((Path(__file__).resolve().parents[3] / "dvc.yaml").read_text())["stages"]
    for stage, want in (("reason_train", ["data/reason/features/${item}"]),
                        ("reason_train_shuffled", ["data/reason/features/${item}"]), ("reason_train_blind", [])):
        spec = stages[stage].get("do", stages[stage])
        assert [d for d in spec["deps"] if d.startswith("data/reason/features")] == want, stage