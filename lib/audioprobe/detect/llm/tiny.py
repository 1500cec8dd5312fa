"""The embedded stand-in: a tiny random Qwen2-Audio, a locally trained tokenizer and a small Whisper front-end.

Nothing is downloaded. The tokenizer is a byte-level BPE trained in memory on the task's
own prompt words (so "A", " A", "B", " B" are single tokens as in the real Qwen
tokenizer) with the chat and audio special tokens of Qwen2-Audio. The front-end keeps the
real model's 128 mel bins, 16 kHz and 10 ms hop but pads to 2 s instead of 30 s (the
clips are <= 1 s), so the encoder needs only 100 positions after its stride-2 conv.
detect_llm_base (audioprobe.detect.llm.base) pretrains it on the train split and saves it once;
every stage then loads it through the same `from_pretrained` path as real weights. The
weights start random and see only the embedded corpus: results are labelled random-init
wherever they are shown.
"""

from __future__ import annotations

import json

import torch

from audioprobe.detect.llm.params import DEFAULT_SYSTEM, SEED_PROMPTS, LlmModel
from audioprobe.detect.llm.pretrain import NO, QUESTIONS, YES

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
CHUNK_S = 2  # front-end pads every clip to this many seconds
# Text the BPE is trained on: the baseline prompt, the seed prompts and some task words,
# so the prompts OPRO writes tokenise into a few hundred ids rather than single bytes.
CORPUS = [
    DEFAULT_SYSTEM,
    *SEED_PROMPTS,
    "system user assistant Audio 1: the a an of to in is it this that with for on be are as or and not",
    "A B A) B) A B a b Yes No yes no speech voice talking words person sound clip short noisy quiet",
    # the pretraining questions and answers (audioprobe.detect.llm.pretrain)
    *(q for q, _ in QUESTIONS),
    f"{YES} {NO}",
]


def build_tokenizer(vocab_size: int):
    """Return a Qwen2Tokenizer (byte-level BPE trained here) with Qwen2-Audio's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS * 4, trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) for m in state["merges"]]
    return Qwen2Tokenizer(
        vocab=state["vocab"], merges=merges,
        extra_special_tokens={"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>",
                              "audio_eos_token": "<|audio_eos|>"},
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )


def build_processor(vocab_size: int):
    """Return a Qwen2AudioProcessor: a 2 s WhisperFeatureExtractor (128 mel, 16 kHz) + the local tokenizer."""
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=CHUNK_S, n_fft=400)
    return Qwen2AudioProcessor(feature_extractor=fe, tokenizer=build_tokenizer(vocab_size))


def build_model(cfg: LlmModel, tokenizer):
    """Return a seeded random Qwen2AudioForConditionalGeneration, `embedded_layers` deep, `embedded_width` wide."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    w, n = cfg.embedded_width, cfg.embedded_layers
    config = Qwen2AudioConfig(
        audio_config=dict(d_model=w, encoder_layers=n, encoder_attention_heads=max(1, w // 32), encoder_ffn_dim=2 * w,
                          num_mel_bins=128, max_source_positions=CHUNK_S * 100 // 2),
        text_config=dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=w, intermediate_size=2 * w,
                         num_hidden_layers=n, num_attention_heads=max(2, w // 16), num_key_value_heads=max(1, w // 32),
                         max_position_embeddings=1024, tie_word_embeddings=False),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(cfg.embedded_seed)
    return Qwen2AudioForConditionalGeneration(config).eval()
