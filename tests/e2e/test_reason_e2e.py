"""End-to-end: `dvc repro reason_eval` on tiny overrides (embedded corpus; real Clotho clips)."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest

from audioprobe.runtime.headline import MAX_KEYS, SYNTHETIC_BANNER

# Tiny but complete: every stage, every default arm, the real metrics code path.
TINY = {
    "reason": {
        "lm": {"hidden": 32, "intermediate": 64, "vocab_size": 300, "steps": 20, "audio_steps": 10},
        "train": {"max_steps": 12, "eval_every": 6, "warmup_steps": 2, "device": "cpu"},
        "encode": {"device": "cpu"},
        "eval": {"bootstrap": 100, "examples": 4},
    },
}
ARMS = ["mel", "blind", "shuffled_mel"]



def _check(root, synthetic: bool) -> dict:
    metrics = json.loads((root / "metrics/reason.json").read_text())
    assert len(metrics) <= MAX_KEYS and all(k.startswith("reason.") for k in metrics)
    for k, v in metrics.items():
        assert isinstance(v, (bool, int, float, str)), (k, v)
        assert not (isinstance(v, float) and not math.isfinite(v)), k
    for arm in ARMS:
        assert 0.0 <= metrics[f"reason.{arm}.em"] <= 1.0
        assert metrics[f"reason.{arm}.em_ci_low"] <= metrics[f"reason.{arm}.em"] <= metrics[f"reason.{arm}.em_ci_high"]
        live = {"blind": "train_blind", "shuffled_mel": "train_shuffled/shuffled_mel"}.get(arm, f"train/{arm}")
        assert (root / f"plots/reason/{live}/plots/metrics/dev_loss.tsv").is_file()
        assert (root / f"data/reason/runs/{arm}/mapper.safetensors").is_file()
    for key in ("mel_minus_blind.em", "mel_minus_blind.p", "mel_minus_shuffled.em", "mel_minus_shuffled.p"):
        assert f"reason.{key}" in metrics
    assert metrics["reason.synthetic"] is synthetic
    assert metrics["reason.weights.lm"].startswith("trained-here@")
    with open(root / "plots/reason/eval/predictions.csv") as f:
        preds = list(csv.DictReader(f))
    assert preds and set(ARMS) <= set(preds[0])
    pairs = list(csv.DictReader(open(root / "plots/reason/eval/paired.csv")))
    assert len(pairs) == 3 and all(0.0 <= float(p["p_mcnemar"]) <= 1.0 for p in pairs)
    report = (root / "plots/reason/eval/report.md").read_text()
    assert "## By question type" in report and "majority" in report
    assert metrics["reason.decode_budget"] >= 2 and 0 <= metrics["reason.cut_answers"] <= len(ARMS) * len(preds)
    assert sum(int(r[f"{a}_cut"]) for r in preds for a in ARMS) == metrics["reason.cut_answers"]
    by_pair = list(csv.DictReader(open(root / "plots/reason/eval/paired_by_type.csv")))
    assert {r["taskname"] for r in by_pair} == {r["taskname"] for r in preds} and "p_mcnemar_holm" in by_pair[0]
    assert (SYNTHETIC_BANNER in report) is synthetic
    assert (root / "plots/reason/eval/accuracy_by_type.png").stat().st_size > 1000
    for f in ("report.md", "examples.md", "provenance.json", "by_type.csv"):
        text = (root / "plots/reason/eval" / f).read_text()
        assert str(root) not in text and "/tmp/" not in text  # no host paths in committed files
    return metrics


@pytest.mark.slow
@pytest.mark.e2e
def test_reason_lane_on_the_embedded_corpus(temp_repo):
    temp_repo.set_params({**TINY, "data": {"reasonaqa": {"embedded": {"rows": 120, "clips": 24}}}})
    temp_repo.commit("tiny")
    temp_repo.run("dvc", "repro", "reason_eval")
    metrics = _check(temp_repo.root, synthetic=True)
    assert metrics["reason.data.reasonaqa"].startswith("embedded@")
    # a new learning rate reruns only the mapper training and the evaluation
    temp_repo.set_params({"reason": {"train": {"lr": 0.0003}}})
    status = json.loads(temp_repo.run("dvc", "status", "--json").stdout)
    # dvc status lists the stages whose own params/deps changed; reason_eval follows them
    # (its deps are their outputs). Other lanes' stages never ran in this copy.
    changed = sorted(k for k in status if k.startswith("reason"))
    assert changed == ["reason_train@mel", "reason_train_blind", "reason_train_shuffled@mel"], changed
    assert "data_download@reasonaqa" not in status
    # adding an arm (a second encoder, audio and shuffled) trains that arm alone: no arm already
    # trained is stale, only the new encoding, the new arms and the evaluation (its arm lists)
    temp_repo.set_params({"reason": {"encode": {"encoders": ["mel", "htsat"]},
                                     "train": {"lr": 0.003, "audio_arms": ["mel", "htsat"], "shuffled_arms": ["mel", "htsat"]}}})
    status = json.loads(temp_repo.run("dvc", "status", "--json").stdout)
    changed = sorted(k for k in status if k.startswith("reason"))
    assert changed == ["reason_encode@htsat", "reason_eval", "reason_train@htsat",
                       "reason_train_shuffled@htsat"], changed
    temp_repo.set_params({"reason": {"encode": {"encoders": ["mel"]},
                                     "train": {"audio_arms": ["mel"], "shuffled_arms": ["mel"]}}})
    # the train split is refused, and the last good metrics stay (persist: true)
    temp_repo.set_params({"reason": {"train": {"lr": 0.003}, "eval": {"split": "train"}}})
    before = (temp_repo.root / "metrics/reason.json").read_text()
    proc = temp_repo.run("dvc", "repro", "reason_eval", check=False)
    assert proc.returncode != 0 and "test split only" in proc.stdout + proc.stderr
    assert (temp_repo.root / "metrics/reason.json").read_text() == before


def _clotho_reasonaqa(fixtures, dest) -> None:
    """Write a ReasonAQA-format copy over the Clotho fixture clips (captions -> questions)."""
    src = fixtures / "clotho_aqa"
    audio = dest / "audio"
    audio.mkdir(parents=True)
    with open(src / "clotho_captions_evaluation.csv") as f:
        caps = {r["file_name"].rsplit(".", 1)[0]: r["caption_1"] for r in csv.DictReader(f)}
    clips = []
    for p in sorted((src / "clotho_audio_files" / "evaluation").glob("*.flac")):
        shutil.copy(p, audio / p.name)
        clips.append((f"audio/{p.name}", caps.get(p.stem, "a sound")))
    for p in sorted((src / "mellow_examples").glob("*.flac")):
        shutil.copy(p, audio / f"mellow_{p.name}")
        clips.append((f"audio/mellow_{p.name}", "an example sound"))
    assert len(clips) >= 6
    splits = {"test": clips[:2], "val": clips[2:4], "train": clips[4:]}
    for split, cs in splits.items():
        rows = []
        for k, (path, cap) in enumerate(cs):
            other = cs[(k + 1) % len(cs)]
            base = dict(caption1=cap, caption2="", filepath2="", filepath1=path)
            rows += [
                {**base, "taskname": "describe", "subtype": "open", "input": "Describe the sound.",
                 "answer": " ".join(cap.split()[:4])},
                {**base, "taskname": "yes_no", "subtype": "presence", "input": "Is there a voice?",
                 "answer": "yes" if "voice" in cap.lower() else "no"},
                {**base, "taskname": "compare", "subtype": "same_source", "filepath2": other[0],
                 "caption2": other[1], "input": "Do the two recordings contain the same kind of sound?",
                 "answer": "no"},
            ]
        (dest / f"{split}.json").write_text(json.dumps(rows, indent=1))


@pytest.mark.slow
@pytest.mark.e2e
def test_reason_lane_on_real_clotho_clips(temp_repo, fixtures_dir, tmp_path):
    raqa = tmp_path / "ReasonAQA"
    _clotho_reasonaqa(fixtures_dir, raqa)
    temp_repo.set_params({**TINY, "reason": {**TINY["reason"], "encode": {"device": "cpu", "max_seconds": 4.0}},
                          "data": {"reasonaqa": {"source": "path", "path": str(raqa)}}})
    temp_repo.commit("clotho")
    temp_repo.run("dvc", "repro", "reason_eval")
    metrics = _check(temp_repo.root, synthetic=False)
    assert metrics["reason.data.reasonaqa"].startswith("path@")
    enc = json.loads((temp_repo.root / "data/reason/features/mel/encoder.json").read_text())
    assert enc["n_items"] == len(list((raqa / "audio").iterdir()))
