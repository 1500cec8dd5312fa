"""params.yaml group `reason`: the reason lane's schema (one sub-model per stage)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, conint, field_validator, model_validator

from audioprobe.runtime.params import Strict

ENCODERS = ("mel", "htsat", "mimi_semantic", "mimi_full")


class ReasonLM(Strict):
    """reason_lm: the frozen LM. `embedded` trains a tiny Llama here; anything else is a hub id / path."""

    # "embedded", or a hub id (HuggingFaceTB/SmolLM2-135M, read from the local HF cache only)
    # or a local folder holding a save_pretrained causal LM + tokenizer.
    name: str = "embedded"
    # The embedded tiny Llama (SmolLM2-shaped, tied embeddings) and its text-only training.
    vocab_size: int = Field(512, ge=64, le=32000)
    hidden: int = Field(128, ge=16, le=2048)
    layers: int = Field(2, ge=1, le=32)
    heads: int = Field(4, ge=1, le=32)
    kv_heads: int = Field(2, ge=1, le=32)
    intermediate: int = Field(256, ge=16, le=8192)
    # Fraction of text rows preceded by their clips' captions (train split text, no audio):
    # it teaches the tiny LM to read a context line where the audio prefix goes later.
    context_fraction: float = Field(1.0, ge=0.0, le=1.0)
    steps: int = Field(300, ge=1)
    # Then the LM learns to read audio, as a real pretrained audio-LM has: `audio_steps` steps on
    # train-split rows with an audio prefix from `front_end`'s features through a front-end mapper
    # trained with it (answer + EOS loss; LM and front-end mapper both trained, then the LM is
    # frozen and the front-end mapper dropped: every arm trains its own mapper from scratch).
    # 0 = text only. Nothing of the val or test split reaches this stage.
    audio_steps: int = Field(800, ge=0)
    front_end: Literal["mel", "htsat", "mimi_semantic", "mimi_full"] = "mel"
    batch_size: int = Field(16, ge=1, le=1024)
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    threads: int = Field(1, ge=1, le=64)  # 1: extra threads only spin on a shared small CPU

    @model_validator(mode="after")
    def _heads_divide(self) -> ReasonLM:
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise ValueError("reason.lm: hidden must be a multiple of heads, heads a multiple of kv_heads")
        return self


class MelCfg(Strict):
    """Log-mel frames (no weights)."""

    n_mels: int = Field(64, ge=1, le=512)
    sample_rate: int = Field(16000, ge=8000, le=96000)
    frame_rate: float = Field(3.125, gt=0.0, le=100.0)  # 320 ms frames: short prefixes on a CPU


class HtsatCfg(Strict):
    """msclap 2023 CLAP's HTSAT: framewise patch tokens before pooling."""

    # A local CLAP_weights_2023.pth (loaded with weights_only=True), or a hub id/file in the local HF cache.
    weights: str = "data/local/weights/CLAP_weights_2023.pth"
    allow_random_init: bool = False  # true: a labelled random HTSAT when the weights are absent
    init_seed: int = Field(0, ge=0)


class MimiCfg(Strict):
    """Mimi (moshi) codes -> dequantised embeddings, with `codebooks` RVQ levels (1 = semantic)."""

    weights: str = "kyutai/moshiko-pytorch-bf16"  # .safetensors path or cached hub id
    allow_random_init: bool = False
    mimi_size: Literal["full", "tiny"] = "full"  # tiny: the small random test config
    init_seed: int = Field(0, ge=0)


class ReasonEncoders(Strict):
    """Per-encoder settings; which encoders run is `reason.encode.encoders`."""

    mel: MelCfg = MelCfg()
    htsat: HtsatCfg = HtsatCfg()
    mimi_semantic: MimiCfg = MimiCfg()
    mimi_full: MimiCfg = MimiCfg()


class ReasonEncode(Strict):
    """reason_encode: every clip of every split through each listed encoder."""

    encoders: list[Literal["mel", "htsat", "mimi_semantic", "mimi_full"]] = ["mel"]
    max_seconds: float = Field(10.0, gt=0.0, le=600.0)  # clips are cut to this (the origin: 10 s)
    batch_size: int = Field(8, ge=1, le=1024)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Worker processes per encoder (torchrun via audioprobe.parallel.launch; 1 = in-process): rank r
    # encodes batches r, r + nproc, ...; rank 0 merges into the store one process writes.
    nproc: int = Field(1, ge=1, le=1024)

    @field_validator("encoders")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list without repeats")
        return v


class ReasonTrain(Strict):
    """reason_train (matrix over arms): mapper training on a frozen LM."""

    # The arms: one audio arm per encoder in `audio_arms` (stage reason_train@<encoder>), one
    # shuffled-audio control per encoder in `shuffled_arms` (reason_train_shuffled@<encoder>: each
    # question paired with another clip's audio, seeded derangement), and the blind control
    # (reason_train_blind: no audio, a learned constant prefix per clip), which always runs. Each
    # stage depends only on the features its arm reads, so adding an arm trains that arm alone.
    audio_arms: list[str] = ["mel"]
    shuffled_arms: list[str] = ["mel"]
    lr: float = Field(3e-3, gt=0.0, le=1.0)  # the origin recipe: 1e-4 over 20 000 steps
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: int = Field(16, ge=1, le=4096)
    max_steps: int = Field(300, ge=1)
    warmup_steps: int = Field(30, ge=0)
    eval_every: int = Field(50, ge=1)  # dev loss every N steps; the best-by-dev mapper is kept
    grad_clip: float = Field(1.0, gt=0.0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(1, ge=1, le=64)  # 1: extra threads only spin on a shared small CPU
    # Worker processes per arm (torchrun via audioprobe.parallel.launch; 1 = in-process). batch_size stays
    # the global batch: each process trains batch_size / nproc rows of it.
    nproc: int = Field(1, ge=1, le=1024)

    @model_validator(mode="after")
    def _batch_splits(self) -> ReasonTrain:
        if self.batch_size % self.nproc:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by nproc {self.nproc}")
        return self

    @field_validator("audio_arms", "shuffled_arms")
    @classmethod
    def _encoders_known(cls, v: list[str], info) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("must not repeat an encoder")
        if info.field_name == "audio_arms" and not v:
            raise ValueError("needs at least one encoder: the audio arm is what the controls are compared with")
        for enc in v:
            if enc not in ENCODERS:
                raise ValueError(f"unknown encoder {enc!r}; use one of {', '.join(ENCODERS)}")
        return v

    @property
    def arms(self) -> list[str]:
        """Every arm, in report order: the audio arms, blind, the shuffled-audio controls."""
        return [*self.audio_arms, "blind", *(f"shuffled_{e}" for e in self.shuffled_arms)]


class ReasonEval(Strict):
    """reason_eval: greedy decoding on the test split, metrics, paired comparisons."""

    split: Literal["test", "val", "train"] = "test"  # anything but test is refused (see the README)
    # New tokens per answer: `auto` = the longest gold answer of the split (+ its EOS); a number
    # below that is refused (it would score right answers as wrong). Answers cut at it are counted.
    max_new_tokens: conint(ge=1, le=512) | Literal["auto"] = "auto"
    batch_size: int = Field(32, ge=1, le=4096)
    bootstrap: int = Field(1000, ge=100, le=100000)  # resamples for CIs and paired tests
    examples: int = Field(12, ge=0, le=1000)  # rows in the example-answers table
    threads: int = Field(1, ge=1, le=64)


class Reason(Strict):
    lm: ReasonLM = ReasonLM()
    encoders: ReasonEncoders = ReasonEncoders()
    encode: ReasonEncode = ReasonEncode()
    train: ReasonTrain = ReasonTrain()
    eval: ReasonEval = ReasonEval()

    @model_validator(mode="after")
    def _front_end_encoded(self) -> Reason:
        if self.lm.name == "embedded" and self.lm.audio_steps and self.lm.front_end not in self.encode.encoders:
            raise ValueError(f"lm.front_end {self.lm.front_end!r} must be in encode.encoders "
                             f"{self.encode.encoders} (its features train the embedded LM to read audio)")
        return self

    @model_validator(mode="after")
    def _arms_encoded(self) -> Reason:
        for key in ("audio_arms", "shuffled_arms"):
            for enc in getattr(self.train, key):
                if enc not in self.encode.encoders:
                    raise ValueError(f"train.{key} has {enc!r} but encode.encoders lacks it")
        return self


SCHEMA = Reason

# The few headline columns `audioprobe exp show reason` puts side by side per experiment (the
# whole metrics file is wider than a terminal; `dvc metrics show` and `dvc exp show --json` have all).
EXP_SHOW = ['mel.em', 'blind.em', 'shuffled_mel.em', 'mel_minus_blind.p']
