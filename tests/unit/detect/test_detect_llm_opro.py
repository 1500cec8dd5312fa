"""OPRO: reward on a hand-built table, the edit optimiser, the search loop, an LLM optimiser on a tiny random LM."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.detect.llm.opro import (
    SEED_PROMPTS,
    EditOptimizer,
    Entry,
    LlmOptimizer,
    meta_prompt,
    parse_candidate,
    reward,
    search,
    top,
    valid,
)
from audioprobe.detect.llm.params import LlmOpro


def test_reward_on_hand_built_table():
    # two conditions; condition 0: 2 speech + 2 non-speech, condition 1: 2 speech + 2 non-speech
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    cond = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.9, 0.2, 0.6, 0.7])  # cond 0 perfect; cond 1: speech 1/2, non 0/2
    prompt = "x" * 200
    r = reward(p, y, cond, prompt, LlmOpro())
    # clips: speech recall 3/4, non-speech recall 2/4 -> BA 0.625; conditions: (1.0 + 0.25) / 2
    assert r["ba_clip"] == pytest.approx(0.625)
    assert r["ba_cond"] == pytest.approx(0.625)
    assert r["length"] == 200
    assert r["reward"] == pytest.approx(0.625 + 0.25 * 0.625 - 0.05 * 2.0)
    # p = 0.5 counts as SPEECH (threshold p >= 0.5)
    r2 = reward(np.array([0.5, 0.49]), np.array([1, 0]), np.array([0, 0]), "A B", LlmOpro())
    assert r2["ba_clip"] == 1.0


def test_valid_and_parse():
    assert valid(SEED_PROMPTS[0]) and all(valid(s) for s in SEED_PROMPTS)
    assert not valid("Is there speech? Answer yes or no.")  # lost the A/B choice
    assert not valid("")
    assert parse_candidate("blah <PROMPT> Is it A or B? </PROMPT> more") == "Is it A or B?"
    assert parse_candidate("no tags") is None


def entries(prompts: list[str]) -> list[Entry]:
    return [Entry(0, p, 0.5, 0.5, len(p), 1.0 - i / 10, "seed") for i, p in enumerate(prompts)]


def test_edit_optimizer_is_seeded_and_keeps_the_choice():
    best = entries(SEED_PROMPTS)
    a = EditOptimizer(7).propose(best, 12)
    b = EditOptimizer(7).propose(best, 12)
    c = EditOptimizer(8).propose(best, 12)
    assert a == b and a != c
    assert all(valid(x) for x in a)
    assert len(set(a)) > 3


def test_search_finds_better_prompt_and_stops_by_patience():
    y = np.array([1, 0] * 20)
    cond = np.repeat(np.arange(4), 10)

    def score_fn(prompt: str) -> np.ndarray:
        # a made-up model that gets every clip right only when the prompt mentions a "person"
        good = "person" in prompt
        return np.where(y == 1, 0.9 if good else 0.4, 0.1)

    cfg = LlmOpro(iterations=40, candidates=3, patience=8, top_k=4)
    best, history, summary = search(score_fn, y, cond, EditOptimizer(0), cfg)
    assert "person" in best.prompt and best.ba_clip == 1.0
    assert history[0].ba_clip == 0.5 and len([e for e in history if e.origin == "seed"]) == 5
    # patience: the last `patience` iterations did not improve the best reward
    rewards = [s["best_reward"] for s in summary]
    assert len(summary) - 1 < 40
    assert rewards[-1] == rewards[-9] and rewards[-9] > rewards[-10]
    assert len({e.prompt for e in history}) == len(history)  # nothing scored twice

    class Repeats:  # proposes only prompts already scored: nothing can improve
        name = "stub"

        def propose(self, best, n):
            return [e.prompt for e in best[:n]]

    flat_best, flat_hist, flat_summary = search(lambda s: np.full(y.shape, 0.7), y, cond, Repeats(),
                                                LlmOpro(iterations=40, patience=2))
    assert len(flat_summary) == 3 and len(flat_hist) == 5  # seeds + 2 iterations without improvement
    assert flat_summary[1]["repeated"] == 3
    assert flat_best.prompt == min(SEED_PROMPTS, key=len)  # equal BA: the length penalty decides


def test_meta_prompt_lists_history_worst_first():
    best = top(entries(["first A B", "second A B", "third A B"]), 2)
    text = meta_prompt(best)
    assert text.index("second A B") < text.index("first A B") and "third" not in text


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A tiny random Llama + a locally trained tokenizer with a chat template, saved like a hub model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = __import__("tokenizers").decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(SEED_PROMPTS * 3 + ["<PROMPT> </PROMPT> score user assistant"], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tok.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
                         "{% if add_generation_prompt %}<s>assistant: {% endif %}")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                                         bos_token_id=1, eos_token_id=2, pad_token_id=0))
    d = tmp_path_factory.mktemp("lm")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_llm_optimizer_runs_offline_and_is_seeded(tiny_lm):
    best = entries(SEED_PROMPTS[:3])
    a = LlmOptimizer(str(tiny_lm), 0.7, 16, seed=3).propose(best, 2)
    b = LlmOptimizer(str(tiny_lm), 0.7, 16, seed=3).propose(best, 2)
    assert a == b and len(a) == 2 and all(isinstance(x, str) for x in a)
    # random weights write noise: the search drops what is not a usable A/B prompt and goes on
    y = np.array([1, 0] * 4)
    _, history, summary = search(lambda s: np.full(8, 0.6), y, np.zeros(8, int),
                                 LlmOptimizer(str(tiny_lm), 0.7, 16, seed=3), LlmOpro(iterations=2, candidates=2))
    assert sum(s["proposed"] for s in summary[1:]) == 4
    assert len(history) == 5 + sum(s["proposed"] - s["invalid"] - s["repeated"] for s in summary[1:])
