"""The audio-LLM library: tiny stand-in save/load, prompt encoding, batches and A/B scoring math."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audioprobe.detect.llm.batch import IGNORE, audio_tokens, build_batch, extract
from audioprobe.detect.llm.base import write_base
from audioprobe.detect.llm.model import attach_adapter, load_base, read_base, resolve
from audioprobe.detect.llm.params import DEFAULT_SYSTEM, DEFAULT_USER, DetectLlm, LlmModel
from audioprobe.detect.llm.prompt import Prompt, encode_prompt, render
from audioprobe.detect.llm.scoring import answer_sets, p_speech, score, variant_ids
from audioprobe.runtime.errors import WeightsError

SR = 16000
PROMPT = Prompt(DEFAULT_SYSTEM, DEFAULT_USER)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    write_base(LlmModel(), d)
    return d


@pytest.fixture(scope="module")
def loaded(base_dir):
    torch.set_num_threads(1)
    return load_base(base_dir, LlmModel())


def waves(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lens = [3200, 4800, 8000, 16000]
    return [(0.1 * rng.standard_normal(lens[i % 4])).astype(np.float32) for i in range(n)]


def test_tiny_saves_byte_identical_and_labelled_random(tmp_path, base_dir):
    write_base(LlmModel(), tmp_path)
    files = sorted(p.name for p in base_dir.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "base.json"} <= set(files)
    for name in files:
        assert (tmp_path / name).read_bytes() == (base_dir / name).read_bytes(), name
    assert read_base(base_dir)["source"] == "random-init"
    assert not any(p.suffix in {".bin", ".pt", ".pkl"} for p in base_dir.iterdir())


def test_round_trip_reproduces_logits(loaded):
    """Saved then loaded through from_pretrained: the same logits as the model built in memory."""
    from audioprobe.detect.llm.tiny import build_model, build_processor

    proc = build_processor(LlmModel().embedded_vocab)
    fresh = build_model(LlmModel(), proc.tokenizer)
    audio = extract(loaded.processor, waves(3), SR)
    pids = encode_prompt(loaded.processor, PROMPT)
    tok = loaded.processor.tokenizer
    batch = build_batch(pids, audio, [0, 1, 2], tok.convert_tokens_to_ids("<|AUDIO|>"), tok.pad_token_id)
    with torch.no_grad():
        a = loaded.model(**batch).logits
        b = fresh(**batch).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert proc.tokenizer.get_vocab() == tok.get_vocab()


def test_prompt_ids_match_the_processor(loaded):
    """prefix + audio*n + suffix equals what Qwen2AudioProcessor builds from the rendered text."""
    proc = loaded.processor
    text = render(proc, PROMPT)
    assert text.startswith("<|im_start|>system\nYou classify audio content.<|im_end|>")
    assert text.endswith("Answer with A or B ONLY.<|im_end|>\n<|im_start|>assistant\n")
    w = waves(4)
    ref = proc(text=[text] * 4, audio=w, sampling_rate=SR, return_tensors="pt", padding=True)
    audio = extract(proc, w, SR)
    assert torch.equal(audio.features, ref["input_features"].float())
    assert torch.equal(audio.mask, ref["feature_attention_mask"].long())
    pids = encode_prompt(proc, PROMPT)
    tok = proc.tokenizer
    for i in range(4):
        ids = pids.prefix + [tok.convert_tokens_to_ids("<|AUDIO|>")] * int(audio.n_tokens[i]) + pids.suffix
        row = ref["input_ids"][i][ref["attention_mask"][i].bool()].tolist()
        assert ids == row
    # 200 ms = 20 frames -> 10 after the conv -> 5 after pooling; 1 s -> 25
    assert audio_tokens(np.array([20, 100])).tolist() == [5, 25]


def test_labels_only_at_the_answer(loaded):
    """Exactly the answer position carries a label; prompt, audio, template tail and pad are -100."""
    proc, tok = loaded.processor, loaded.processor.tokenizer
    audio = extract(proc, waves(4), SR)
    pids = encode_prompt(proc, PROMPT)
    audio_id = tok.convert_tokens_to_ids("<|AUDIO|>")
    labels = ["SPEECH", "NONSPEECH", "NONSPEECH", "SPEECH"]
    b = build_batch(pids, audio, [0, 1, 2, 3], audio_id, tok.pad_token_id, labels=labels)
    ids, lab, att = b["input_ids"], b["labels"], b["attention_mask"]
    a_id = tok("A", add_special_tokens=False)["input_ids"]
    b_id = tok("B", add_special_tokens=False)["input_ids"]
    assert len(a_id) == len(b_id) == 1 and len(pids.tail) >= 1
    ans_pos = ids.shape[1] - len(pids.tail) - 1  # same column in every row: left padding
    for r, label in enumerate(labels):
        want = (a_id if label == "SPEECH" else b_id)[0]
        assert lab[r, ans_pos].item() == want and ids[r, ans_pos].item() == want
        others = torch.ones(ids.shape[1], dtype=torch.bool)
        others[ans_pos] = False
        assert (lab[r, others] == IGNORE).all()
        # the row really holds audio placeholders, pads (short clips) and the tail, all ignored
        assert (ids[r] == audio_id).sum().item() == audio.n_tokens[r]
        assert ids[r, -len(pids.tail):].tolist() == pids.tail
    assert (att[0] == 0).any(), "the 200 ms clip must be left-padded"
    assert tok.decode(pids.tail) == "<|im_end|>\n"


def test_variant_sets_from_the_tokenizer(loaded):
    tok = loaded.processor.tokenizer
    a, b = answer_sets(tok)
    assert a == sorted({tok.convert_tokens_to_ids("A"), tok.convert_tokens_to_ids("ĠA")})
    assert b == sorted({tok.convert_tokens_to_ids("B"), tok.convert_tokens_to_ids("ĠB")})
    assert not set(a) & set(b)
    assert tok("a", add_special_tokens=False)["input_ids"][0] not in a  # lower case left out

    class TwoTokenSpace:  # a tokenizer where " A" needs two tokens: only "A" counts
        def __call__(self, s, add_special_tokens=False):
            return {"input_ids": {"A": [7], " A": [3, 7], "Q": [1, 2], " Q": [0, 1, 2]}[s]}

    assert variant_ids(TwoTokenSpace(), "A") == [7]
    with pytest.raises(ValueError, match="no single-token spelling"):
        variant_ids(TwoTokenSpace(), "Q")


def test_p_speech_math_on_hand_built_logits():
    logits = torch.full((2, 6), -50.0)
    logits[0, [1, 2]] = torch.tensor([0.0, 0.0])  # A spellings: logsumexp = log 2
    logits[0, 4] = 0.0  # B: log 1
    logits[1, 4] = 3.0
    p = p_speech(logits, [1, 2], [4])
    assert p[0].item() == pytest.approx(2 / 3, abs=1e-12)  # sigmoid(log 2)
    assert p[1].item() == pytest.approx(1 / (1 + math.exp(3.0 + 50.0 - math.log(2))), rel=1e-9)


def test_scores_do_not_depend_on_batch_company(loaded):
    """Left padding + real positions: a clip scored with others equals the clip scored alone."""
    proc = loaded.processor
    audio = extract(proc, waves(6, seed=3), SR)
    pids = encode_prompt(proc, PROMPT)
    together = score(loaded.model, proc, pids, audio, loaded.device, loaded.dtype, batch_size=6)
    alone = np.array([score(loaded.model, proc, pids, audio, loaded.device, loaded.dtype, 1, idx=np.array([i]))[0]
                      for i in range(6)])
    assert np.allclose(together, alone, atol=1e-6)
    assert ((together > 0) & (together < 1)).all()


def test_missing_weights_is_one_line(tmp_path):
    with pytest.raises(WeightsError, match=r"detect.llm.model.id: 'no-such/model-xyz'.*local Hugging Face cache"):
        resolve("no-such/model-xyz")
    with pytest.raises(WeightsError, match="detect_llm_base"):
        read_base(tmp_path)
    with pytest.raises(WeightsError, match="detect_finetune"):
        attach_adapter(None, tmp_path)  # type: ignore[arg-type]


def test_params_defaults_and_checks():
    cfg = DetectLlm()
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout) == (16, 32, 0.05)
    assert cfg.finetune.lr == 2e-4 and cfg.opro.cond_weight == 0.25 and cfg.opro.len_weight == 0.05
    with pytest.raises(ValueError, match="load_in_4bit"):
        DetectLlm.model_validate({"model": {"load_in_4bit": True}})
