"""The reason mechanism on a tiny task, and mutations of it that a broken lane would carry.

The task: four sound classes, one question ("What is the sound?"), the answer is the class
word; each clip's frames carry its class. The LM learns to hear as reason_lm teaches the
embedded LM (train_prefix_lm on train rows, then frozen), then a fresh mapper is trained per
arm as reason_train does, and the test split is answered as reason_eval does. With the
mechanism intact the audio arm is right on almost every test question and blind on about a
quarter (it can only guess). Each mutation — the mapper's prefix zeroed, the audio arm fed
another clip's audio — must make `audio_beats_blind` false: the suite, not only the
pipeline, catches a lane whose audio path is broken.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audioprobe.reason import lm as lmlib
from audioprobe.reason.arms import BLIND, BLIND_DIM, arm_clips, input_stats
from audioprobe.reason.evaluate import decode_budget, predict, score_rows
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.params import ReasonLM, ReasonTrain
from audioprobe.reason.training import ArmBatches, train_mapper, train_prefix_lm

WORDS = ["dog", "rain", "bell", "engine"]
DIM = 6


def _task(seed: int = 0) -> tuple[dict[str, list[dict]], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows, feats = {}, {}
    for split, n_clips in (("train", 48), ("val", 12), ("test", 24)):
        rows[split] = []
        for i in range(n_clips):
            c = i % len(WORDS)
            clip = f"{split}/{i:03d}.wav"
            x = rng.normal(0, 0.3, (2, DIM)).astype(np.float32)
            x[:, c] += 2.0
            feats[clip] = x
            for _ in range(3):
                rows[split].append({"taskname": "identify", "subtype": "source", "input": "What is the sound?",
                                    "answer": WORDS[c], "filepath1": clip, "filepath2": "",
                                    "caption1": WORDS[c], "caption2": ""})
    return rows, feats


@pytest.fixture(scope="module")
def hearing_lm():
    rows, feats = _task()
    tok = lmlib.build_tokenizer([f"Question: What is the sound?\nAnswer: {w}" for w in WORDS] * 20, 300)
    torch.manual_seed(0)
    lm = lmlib.tiny_llama(tok, ReasonLM(hidden=32, intermediate=64, heads=4, kv_heads=2, layers=1, vocab_size=300))
    inputs = arm_clips("mel", rows["train"], feats, 0, "train")
    front = AudioMapper(DIM, 32)
    front.set_norm(*input_stats(inputs))
    losses = train_prefix_lm(lm, front, ArmBatches(tok, rows["train"], inputs), tok.pad_token_id, 150, 16, 3e-3, 0)
    assert losses[-1] < 0.5 * losses[0]
    return lm.requires_grad_(False), tok, rows, feats


def _em(lm, tok, rows, feats, arm: str, eval_arm: str | None = None) -> float:
    """Train a fresh mapper for `arm` on the frozen LM; exact match on test, fed `eval_arm`'s inputs."""
    src = None if arm == BLIND else feats
    inputs = {s: arm_clips(arm, rows[s], src, 0, s) for s in rows}
    torch.manual_seed(0)
    mapper = AudioMapper(BLIND_DIM if arm == BLIND else DIM, 32)
    if arm != BLIND:
        mapper.set_norm(*input_stats(inputs["train"]))
    cfg = ReasonTrain(max_steps=80, eval_every=40, warmup_steps=5, batch_size=16)
    best, _ = train_mapper(lm, mapper, ArmBatches(tok, rows["train"], inputs["train"]),
                           ArmBatches(tok, rows["val"], inputs["val"]), tok.pad_token_id, cfg, 0)
    mapper.load_state_dict(best)
    test_inputs = arm_clips(eval_arm or arm, rows["test"], None if (eval_arm or arm) == BLIND else feats, 0, "test")
    budget, _ = decode_budget(tok, rows["test"], "auto", "test")
    preds, _ = predict(lm, tok, mapper, rows["test"], test_inputs, 32, budget)
    return float(np.mean([s["em"] for s in score_rows(rows["test"], preds)]))


def audio_beats_blind(lm, tok, rows, feats, eval_arm: str | None = None) -> tuple[bool, float, float]:
    audio, blind = _em(lm, tok, rows, feats, "mel", eval_arm), _em(lm, tok, rows, feats, BLIND)
    return audio >= blind + 0.4, audio, blind


def test_the_audio_arm_hears_and_blind_only_guesses(hearing_lm):
    ok, audio, blind = audio_beats_blind(*hearing_lm)
    assert ok and audio >= 0.8 and blind <= 0.45, (audio, blind)


def test_mutation_a_zeroed_mapper_prefix_is_caught(hearing_lm, monkeypatch):
    forward = AudioMapper.forward
    monkeypatch.setattr(AudioMapper, "forward", lambda self, clips: [0.0 * p for p in forward(self, clips)])
    ok, audio, blind = audio_beats_blind(*hearing_lm)
    assert not ok, (audio, blind)


def test_mutation_another_clips_audio_in_the_audio_arm_is_caught(hearing_lm):
    ok, audio, blind = audio_beats_blind(*hearing_lm, eval_arm="shuffled_mel")
    assert not ok, (audio, blind)


def test_reason_lm_hears_only_train_split_clips(tmp_path, monkeypatch):
    """The embedded LM's audio phase reads the train split's rows and only their clips' features."""
    import yaml
    from typer.testing import CliRunner

    from stages import reason_lm

    rows, feats = _task()
    params = yaml.safe_load((Path(__file__).resolve().parents[3] / "params.yaml").read_text())
    params["reason"]["lm"].update({"hidden": 32, "intermediate": 64, "vocab_size": 300, "steps": 5, "audio_steps": 5})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    asked, read = [], []

    def load_split(root, split):
        asked.append(split)
        return rows[split]

    def read_features(folder, only=None):
        read.append(None if only is None else list(only))
        return {c: feats[c] for c in (only if only is not None else feats)}, {"dim": DIM}

    monkeypatch.setattr(reason_lm, "dataset_root", lambda raw, params_file: tmp_path)
    monkeypatch.setattr(reason_lm, "load_split", load_split)
    monkeypatch.setattr(reason_lm, "read_features", read_features)
    out = tmp_path / "lm"
    res = CliRunner().invoke(reason_lm.app, ["--raw", str(tmp_path), "--features", str(tmp_path), "--out", str(out),
                                             "--params", str(tmp_path / "params.yaml")])
    assert res.exit_code == 0, res.output
    train_clips = sorted({r["filepath1"] for r in rows["train"]})
    assert asked == ["train"] and read == [train_clips]
    lm = json.loads((out / "lm.json").read_text())
    assert (lm["front_end"], lm["audio_steps"], lm["audio_clips"]) == ("mel", 5, len(train_clips))


def test_mapper_training_shows_progress_when_asked(hearing_lm, capsys):
    lm, tok, rows, feats = hearing_lm
    inputs = {s: arm_clips(BLIND, rows[s], None, 0, s) for s in ("train", "val")}
    cfg = ReasonTrain(max_steps=4, eval_every=2, warmup_steps=1, batch_size=8)
    for progress in (None, "reason_train blind"):
        train_mapper(lm, AudioMapper(BLIND_DIM, 32), ArmBatches(tok, rows["train"], inputs["train"]),
                     ArmBatches(tok, rows["val"], inputs["val"]), tok.pad_token_id, cfg, 0, progress=progress)
        err = capsys.readouterr().err
        assert ("reason_train blind" in err and "4/4" in err) == (progress is not None), err
