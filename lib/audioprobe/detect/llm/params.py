"""params.yaml group `detect.llm`: the audio-LLM's model, prompt, LoRA, fine-tune, scoring and OPRO settings.

Plugged into the lane schema as `Detect.llm: DetectLlm = DetectLlm()`. Keys named
`embedded_*` apply only to the tiny random stand-in (model.source = embedded); a real
run keeps the origin's recipe (LoRA only, lr 2e-4).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from audioprobe.runtime.params import Strict

DEFAULT_SYSTEM = "You classify audio content."
DEFAULT_USER = (
    "Choose one:\nA) SPEECH (human voice)\nB) NONSPEECH (music/noise/silence/animals)\n\nAnswer with A or B ONLY."
)

# The origin's five starting prompts (its baseline first).
SEED_PROMPTS = [
    DEFAULT_USER,
    "Listen carefully to this audio clip.\n\nDoes it contain human speech?\n\nA) Yes - I hear human voice speaking\n"
    "B) No - I hear music, noise, silence, or non-human sounds\n\nYour answer:",
    "Task: Detect if human speech is present in this audio.\n\nA) SPEECH detected\nB) NO SPEECH detected\n\nAnswer:",
    "Is there human speech in this audio?\n\nA) Yes\nB) No\n\nYour response:",
    "Classification task: SPEECH vs NONSPEECH\n\nListen to the audio.\n\nA = Contains human voice\n"
    "B = Does not contain human voice\n\nSelect:",
]


class LlmModel(Strict):
    """Which Qwen2-Audio: the tiny random stand-in built here, or real weights by hub id / local path."""

    source: Literal["embedded", "pretrained"] = "embedded"
    # pretrained: a hub id (read from the local HF cache only, HF_HUB_OFFLINE) or a local folder
    id: str = Field("Qwen/Qwen2-Audio-7B-Instruct", min_length=1)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    load_in_4bit: bool = False  # bitsandbytes NF4 (the origin's QLoRA on 24 GB cards); CUDA only
    # embedded stand-in: 2-layer encoder and LM, `width` wide, byte-level BPE of `vocab` tokens
    embedded_width: int = Field(64, ge=16, le=1024)
    embedded_layers: int = Field(2, ge=1, le=12)
    embedded_vocab: int = Field(400, ge=300, le=8000)
    embedded_seed: int = Field(0, ge=0, le=2**32 - 1)


class LlmPretrain(Strict):
    """Embedded stand-in only: the base is trained here, in full, before anything else reads it
    (audioprobe.detect.llm.pretrain: a yes/no question on the clean train-split segments with
    generated noise). With model.source: pretrained nothing runs and base.json records it."""

    steps: int = Field(1000, ge=0, le=1_000_000)  # AdamW steps; 0: keep the random init
    batch_size: int = Field(16, ge=1, le=4096)
    lr: float = Field(3e-3, gt=0.0, le=1.0)  # linear warmup over 10 % of the steps, cosine to 0
    copies: int = Field(3, ge=1, le=100)  # each clean segment as is + (copies - 1) generated-noise mixes
    snrs_db: list[float] = Field([-5.0, 0.0, 5.0, 10.0, 20.0], min_length=1)  # of the generated noise
    threads: int = Field(1, ge=1, le=256)


class LlmPrompt(Strict):
    """The hand-written baseline prompt (origin's): system text and the user text after the audio."""

    system: str = Field(DEFAULT_SYSTEM, min_length=1)
    user: str = Field(DEFAULT_USER, min_length=1)


class LlmLora(Strict):
    """peft LoRA on the attention projections (module-name suffixes, as peft matches them)."""

    rank: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1, le=4096)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    targets: list[str] = Field(["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1)
    # Embedded only: the stand-in's LM head never produced "A"/"B" in its pretraining (those rows
    # only learned to stay low), so it is trained in full (peft modules_to_save), after a probe of
    # it alone (finetune.embedded_probe_steps). The pretrained projector is left to LoRA. Ignored
    # for real weights.
    embedded_modules_to_save: list[str] = ["lm_head"]


class LlmFinetune(Strict):
    """detect_finetune: answer-token loss, AdamW, linear warmup then cosine decay, best-by-dev adapter."""

    epochs: int = Field(8, ge=1, le=1000)  # origin: 3 (on 21 k clips); the embedded set is 720 clips
    batch_size: int = Field(8, ge=1, le=1024)
    grad_accum: int = Field(2, ge=1, le=1024)  # effective batch = batch_size x grad_accum (origin 16)
    lr: float = Field(2e-4, gt=0.0, le=1.0)  # origin; real weights
    embedded_lr: float = Field(3e-3, gt=0.0, le=1.0)  # the random stand-in needs a larger step
    # embedded only: steps fitting the LM head alone on the frozen network before LoRA trains (LP-FT)
    embedded_probe_steps: int = Field(100, ge=0, le=100_000)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    warmup_steps: int = Field(100, ge=0)  # optimiser steps; capped at 10 % of the run
    eval_every: int = Field(20, ge=1)  # optimiser steps between dev-loss evaluations
    max_train_clips: int = Field(0, ge=0)  # 0: every train clip
    max_dev_clips: int = Field(0, ge=0)  # 0: every dev clip
    # light SpecAugment on the log-mel input, training only
    specaug_p: float = Field(0.5, ge=0.0, le=1.0)
    specaug_freq: int = Field(10, ge=0, le=128)  # widest frequency mask, mel bins
    specaug_time: float = Field(0.05, ge=0.0, le=0.5)  # widest time mask, fraction of the clip's frames
    # (no seed here: the fine-tune's random choices derive from the global `seed`, like every lane's training)
    threads: int = Field(1, ge=1, le=256)  # 1: fastest on a shared CPU, and bit-stable
    # processes (torchrun workers via audioprobe.parallel.launch; 1 = plain single process). The
    # batch stays batch_size whatever nproc: each process trains batch_size / nproc clips of it.
    nproc: int = Field(1, ge=1, le=1024)

    @model_validator(mode="after")
    def _check(self) -> "LlmFinetune":
        if self.batch_size % self.nproc:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by nproc {self.nproc}")
        return self


class LlmScoring(Strict):
    """Constrained A/B scoring: one forward pass per clip, last-position logits."""

    batch_size: int = Field(32, ge=1, le=4096)
    threads: int = Field(1, ge=1, le=256)  # 1: fastest on a shared CPU, and bit-stable


class LlmOpro(Strict):
    """detect_opro: prompt search on dev only (origin opro2 settings as defaults where they exist)."""

    optimizer: Literal["edit", "llm"] = "edit"
    # optimizer = llm: any causal LM with a chat template, by hub id (local cache) or path
    optimizer_model: str = Field("Qwen/Qwen2.5-7B-Instruct", min_length=1)
    temperature: float = Field(0.7, gt=0.0, le=5.0)
    max_new_tokens: int = Field(120, ge=8, le=2048)
    iterations: int = Field(2, ge=0, le=1000)  # embedded budget; origin: until patience stops it
    candidates: int = Field(3, ge=1, le=100)  # new prompts per iteration
    top_k: int = Field(10, ge=1, le=1000)  # history entries shown to the optimiser
    patience: int = Field(5, ge=1, le=1000)  # iterations without a better reward before stopping
    cond_weight: float = Field(0.25, ge=0.0, le=10.0)  # R = BA_clip + cond_weight BA_cond - len_weight len/100
    len_weight: float = Field(0.05, ge=0.0, le=10.0)
    max_dev_clips: int = Field(0, ge=0)  # 0: every dev clip
    # (no seed here: OPRO's random choices derive from the global `seed`)


class DetectLlm(Strict):
    model: LlmModel = LlmModel()
    pretrain: LlmPretrain = LlmPretrain()
    prompt: LlmPrompt = LlmPrompt()
    lora: LlmLora = LlmLora()
    finetune: LlmFinetune = LlmFinetune()
    scoring: LlmScoring = LlmScoring()
    opro: LlmOpro = LlmOpro()

    @model_validator(mode="after")
    def _check(self) -> "DetectLlm":
        if self.model.load_in_4bit and self.model.source != "pretrained":
            raise ValueError("model.load_in_4bit applies to pretrained weights only; set model.source: pretrained")
        if len(set(self.lora.targets)) != len(self.lora.targets):
            raise ValueError(f"lora.targets must not repeat a name, got {self.lora.targets}")
        return self
