"""params.yaml group `detect`: the detect lane's schema (one sub-model per stage)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from audioprobe.detect.llm.params import DetectLlm
from audioprobe.runtime.params import Strict

SpeechSource = Literal["librispeech", "speech_commands"]
NonspeechType = Literal["environment", "animals", "music", "noise"]
Colour = Literal["white", "pink", "brown"]
Esc50Category = Annotated[str, Field(pattern=r"^[a-z][a-z_]*$")]  # an ESC-50 `category`, e.g. crying_baby
PositiveMs = Annotated[int, Field(gt=0, le=60000)]
Snr = Annotated[float, Field(ge=-60.0, le=60.0)]


class DetectDataset(Strict):
    """detect_dataset: the factorial clip set (duration x SNR x class), before hygiene."""

    seed: int = Field(0, ge=0, le=2**32 - 1)
    durations_ms: list[PositiveMs] = Field([200, 300, 500, 1000], min_length=1)
    snrs_db: list[Snr] = Field([-5.0, 0.0, 5.0, 10.0, 20.0], min_length=1)
    # Clips per cell (duration x SNR x class) AFTER hygiene, over the three splits.
    clips_per_cell: int = Field(30, ge=5, le=100000)
    # First round: clips_per_cell x oversample candidates per cell, so hygiene can drop some.
    oversample: float = Field(2.0, ge=1.0, le=10.0)
    # Then, while the candidates passing the hygiene rule (detect.hygiene) cannot fill a cell x split
    # with equal shares per source type, more are drawn, up to clips x max_oversample per cell x split.
    max_oversample: float = Field(10.0, ge=1.0, le=100.0)
    split_fractions: list[float] = Field([0.6, 0.2, 0.2], min_length=3, max_length=3)
    speech_sources: list[SpeechSource] = Field(["librispeech", "speech_commands"], min_length=1)
    nonspeech_types: list[NonspeechType] = Field(["environment", "animals", "music", "noise"], min_length=1)
    # ESC-50 categories never used as NONSPEECH: its human vocal sounds (the origin removed human
    # sounds from the non-speech class). What was left out is printed and in esc50_excluded.csv.
    esc50_excluded: list[Esc50Category] = ["crying_baby", "laughing", "coughing", "sneezing", "snoring", "breathing"]
    # Synthetic noise-colour files joined to MUSAN noise in the `noise` type (seeded, 4 s each).
    noise_colours: list[Colour] = ["white", "pink", "brown"]
    colour_files: int = Field(4, ge=0, le=1000)  # per colour
    # Background noise mixed into every clip at the cell SNR: Speech Commands'
    # _background_noise_ files (dude_miaowing.wav is a human imitating a cat: left out).
    background_files: list[str] = Field(
        ["doing_the_dishes.wav", "exercise_bike.wav", "pink_noise.wav", "running_tap.wav", "white_noise.wav"],
        min_length=1,
    )
    min_files_per_cell: int = Field(2, ge=1)  # distinct source files per cell and split
    # Energy-guided segment choice: a 10 ms frame is active when within active_db of the
    # file's loudest frame; a segment is eligible when >= min_active of its frames are.
    frame_ms: int = Field(10, ge=1, le=100)
    active_db: float = Field(30.0, gt=0.0, le=120.0)
    speech_min_active: float = Field(0.8, ge=0.0, le=1.0)
    nonspeech_min_active: float = Field(0.5, ge=0.0, le=1.0)
    peak: float = Field(0.9, gt=0.0, le=1.0)  # peak normalisation of the mixed clip

    @model_validator(mode="after")
    def _check(self) -> "DetectDataset":
        if self.max_oversample < self.oversample:
            raise ValueError(f"max_oversample ({self.max_oversample}) must be >= oversample ({self.oversample})")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6 or min(self.split_fractions) <= 0:
            raise ValueError(f"split_fractions must be 3 positive numbers summing to 1, got {self.split_fractions}")
        for name in ("durations_ms", "snrs_db", "speech_sources", "nonspeech_types", "esc50_excluded"):
            vals = getattr(self, name)
            if len(set(vals)) != len(vals):
                raise ValueError(f"{name} must not repeat a value, got {vals}")
        return self


class DetectHygiene(Strict):
    """detect_hygiene: WebRTC VAD on the clean source segment (origin: mode 3, 30 ms frames)."""

    vad_mode: int = Field(3, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 30
    speech_min_active: float = Field(0.7, ge=0.0, le=1.0)  # a SPEECH clip keeps >= this
    # A NONSPEECH clip keeps <= this. 1.0 = measured and reported, never applied: WebRTC calls
    # 60-95 % of the frames of any loud sound speech, so the origin's 0.05 drops ~99 % of the
    # non-speech candidates and no cell can be filled (lane README, "Hygiene").
    nonspeech_max_active: float = Field(1.0, ge=0.0, le=1.0)


class DetectBaselines(Strict):
    """detect_baselines: per-clip speech scores in [0, 1] of WebRTC VAD, Silero VAD and an energy detector."""

    webrtc_mode: int = Field(1, ge=0, le=3)  # origin: aggressiveness 1
    webrtc_frame_ms: Literal[10, 20, 30] = 30
    silero_chunk: Literal[512] = 512  # samples at 16 kHz (the only size the model takes)
    # energy detector: 20 ms frames; active when > floor (10th percentile) + margin_db
    energy_frame_ms: int = Field(20, ge=5, le=200)
    energy_margin_db: float = Field(6.0, ge=0.0, le=60.0)
    threads: int = Field(1, ge=1, le=64)  # torch threads (fixed: bit-identical scores)


class DetectEval(Strict):
    """detect_eval: every listed system, one protocol; thresholds fitted on dev only."""

    # Names of folders under data/detect/scores/ (each with scores.parquet + system.json).
    systems: list[str] = Field(["webrtc", "silero", "energy", "llm_base_baseline", "llm_base_opro",
                                "llm_lora_baseline", "llm_lora_opro"], min_length=1)
    ece_bins: int = Field(10, ge=2, le=100)
    bootstrap: int = Field(200, ge=0, le=100000)  # resamples of test source files for DT CIs
    slice_bootstrap: int = Field(0, ge=0, le=100000)  # the same for per-duration / per-SNR curves (0: point fits only)
    ci: float = Field(0.95, gt=0.0, lt=1.0)
    max_lapse: float = Field(0.1, ge=0.0, lt=0.5)
    confident_errors: int = Field(20, ge=0, le=10000)  # rows of the most confident errors per system
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _unique(self) -> "DetectEval":
        if len(set(self.systems)) != len(self.systems):
            raise ValueError(f"systems must not repeat a name, got {self.systems}")
        bad = [s for s in self.systems if not s.replace("_", "").replace("-", "").isalnum()]
        if bad:
            raise ValueError(f"systems must be folder names of letters, digits, '_' or '-', got {bad}")
        return self


class Detect(Strict):
    dataset: DetectDataset = DetectDataset()
    hygiene: DetectHygiene = DetectHygiene()
    baselines: DetectBaselines = DetectBaselines()
    eval: DetectEval = DetectEval()
    llm: DetectLlm = DetectLlm()


SCHEMA = Detect

# The few headline columns `audioprobe exp show detect` puts side by side per experiment (the
# whole metrics file is wider than a terminal; `dvc metrics show` and `dvc exp show --json` have all).
EXP_SHOW = ['silero.bal_acc', 'webrtc.bal_acc', 'energy.bal_acc', 'llm_lora_opro.bal_acc']
