"""params.yaml group `phase0`: the phase0 lane's schema (one sub-model per stage)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from audioprobe.runtime.params import Strict

# Schema defaults that are deliberately not params.yaml's (the embedded default), with the reason;
# every other default equals params.yaml (tests/unit/runtime/test_params.py checks both ways).
DIFFERS_FROM_PARAMS_YAML = {
    "phase0.metrics.min_cluster_train_samples":
        "100 is the spec's, for real LibriSpeech; the ~5k train frames of the embedded corpus would leave"
        " no pca8_vq256 cluster that large, so params.yaml scales it down to 20 (lane README)",
}


class Phase0Latents(Strict):
    """latents stage: which utterances are encoded, and how."""

    # LibriSpeech subset folder(s) under the dataset root: one name, a list, or "all".
    subset: str | list[str] = "train-clean-100"
    min_seconds: float = Field(3.0, ge=0.0)  # the spec keeps utterances >= 3 s
    batch_size: int = Field(8, ge=1, le=1024)  # utterances per padded batch (sorted by length)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    load_workers: int = Field(2, ge=0, le=64)  # threads decoding + resampling audio
    # torchrun workers sharing the utterances (latents, tier1_latents; dvc.yaml's launcher reads it)
    nproc: int = Field(1, ge=1, le=1024)


class Phase0Encoder(Strict):
    """latents stage: which encoder and its weights (audioprobe.encoders.build_encoder)."""

    name: Literal["mel", "mimi", "encodec"] = "mel"
    # mimi: a local .safetensors path, a hub id (owner/name or owner/name/file, read from the
    # local HF cache only, never downloaded), or "random-init" (labelled random model).
    weights: str = "kyutai/moshiko-pytorch-bf16"
    mimi_size: Literal["full", "tiny"] = "full"  # tiny: small random config for tests
    encodec_size: Literal["full", "tiny"] = "full"  # encodec random-init only (weights: facebook/encodec_24khz)
    init_seed: int = Field(0, ge=0)  # torch seed for a random-init model
    n_mels: int = Field(80, ge=1, le=512)
    mel_sample_rate: int = Field(16000, ge=8000, le=96000)
    mel_frame_rate: float = Field(12.5, gt=0.0, le=100.0)  # codec-like rate (Mimi: 12.5 Hz)


class Phase0Split(Strict):
    """speaker_split stage (seeded by the global `seed`)."""

    eval_fraction: float = Field(0.2032, gt=0.0, lt=1.0)  # 51 of 251 train-clean-100 speakers
    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # utterance hold-out in train speakers


class Phase0Frames(Strict):
    """frames stage."""

    # is_high_energy = energy > this quantile of train-split frame energy (0.5: the spec's median)
    high_energy_quantile: float = Field(0.5, gt=0.0, lt=1.0)


class Phase0Context(Strict):
    """Context window and lags (frames, conditioning_fit, phase0_metrics)."""

    window: int = Field(8, ge=1, le=256)  # W frames, ending at t - L (inclusive)
    lags: list[int] = [1, 2, 4]

    @field_validator("lags")
    @classmethod
    def _lags_positive_unique(cls, v: list[int]) -> list[int]:
        if not v or any(lag < 1 for lag in v) or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct ints >= 1")
        return v


Phase0Scheme = Literal["mean_vq64", "pca8_vq256", "pca8_quartile"]


class Phase0Conditioning(Strict):
    """conditioning_fit stage (seeded by the global `seed`; fits see train speakers only)."""

    schemes: list[Phase0Scheme] = ["mean_vq64", "pca8_vq256", "pca8_quartile"]
    mean_vq_k: int = Field(64, ge=2, le=65536)  # K of mean_vq64 (the name keeps the origin's K)
    pca_components: int = Field(8, ge=1, le=15)  # pca8_*: 4**k quartile bins must fit int32
    pca_vq_k: int = Field(256, ge=2, le=65536)  # K of pca8_vq256
    # The spec's n_init 10 / max_iter 100 is conditioning.KMEANS_REFERENCE; one start run to
    # convergence is 10x cheaper and VR moves no more than reseeding the reference (lane README).
    kmeans_n_init: int = Field(1, ge=1, le=100)
    kmeans_max_iter: int = Field(300, ge=1, le=10000)
    kmeans_tol: float = Field(1e-4, ge=0.0)  # sklearn tol: relative to the mean per-dim variance
    # Seeded subsample of train contexts the k-means fits see (0 = all): the full 800 k
    # fit takes ~6 min on 2 cores and moved VR no more than seed noise (lane README).
    kmeans_fit_samples: int = Field(25000, ge=0)
    pca_fit_samples: int = Field(32768, ge=0)  # windows (W·D floats each) for randomized PCA; 0 = all

    @field_validator("schemes")
    @classmethod
    def _schemes_unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct scheme names")
        return v


class Phase0Metrics(Strict):
    """phase0_metrics stage."""

    min_cluster_train_samples: int = Field(100, ge=1)  # effective cluster: >= this many train samples
    min_speaker_samples: int = Field(10, ge=1)  # per-speaker VR skips smaller speakers
    excluded_mass_flag: float = Field(0.10, ge=0.0, le=1.0)  # flag a scheme excluding more than this
    medial_pos_frac: list[float] = [0.17, 0.83]  # utterance-medial slice: pos_frac in [lo, hi]
    confidence_keep_pct: list[float] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]

    @field_validator("medial_pos_frac")
    @classmethod
    def _medial_range(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0.0 <= v[0] < v[1] <= 1.0:
            raise ValueError("must be [lo, hi] with 0 <= lo < hi <= 1")
        return v

    @field_validator("confidence_keep_pct")
    @classmethod
    def _keep_pct(cls, v: list[float]) -> list[float]:
        if not v or v[0] <= 0 or v[-1] != 100 or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("must rise strictly from > 0 to exactly 100")
        return v


class Phase0Decision(Strict):
    """phase0_report stage: the PASS rule (lane README), applied at one lag."""

    lag: int = Field(1, ge=1)  # must be one of phase0.context.lags
    vr_max: float = Field(0.6, gt=0.0)  # VR < this on train and eval
    degradation_max: float = Field(0.20, gt=0.0)  # (VR_eval − VR_train)/VR_train < this
    random_tolerance: float = Field(0.05, ge=0.0)  # |VR_random − 1| <= this on train and eval
    slice_vr_max: float = Field(0.65, gt=0.0)  # VR <= this on high-energy and medial slices
    # Also fail a scheme whose train or eval excluded mass is flagged (> excluded_mass_flag);
    # false gives the origin's rule. An all-excluded scheme fails either way (no VR).
    require_low_exclusion: bool = True


class Phase0Tier1Mel(Strict):
    """tier1_latents@mel: log-mel at its native rate (the fields of phase0.encoder's mel)."""

    n_mels: int = Field(80, ge=1, le=512)
    mel_sample_rate: int = Field(16000, ge=8000, le=96000)
    mel_frame_rate: float = Field(50.0, gt=0.0, le=100.0)  # native: hop 320 at 16 kHz (pool 2 STFT frames)


class Phase0Tier1Mimi(Strict):
    """tier1_latents@mimi (the fields of phase0.encoder's mimi). Real run: weights
    kyutai/moshiko-pytorch-bf16 (or a local .safetensors), mimi_size full."""

    weights: str = "random-init"  # embedded default: offline, labelled random-init
    mimi_size: Literal["full", "tiny"] = "tiny"
    init_seed: int = Field(0, ge=0)


class Phase0Tier1Encodec(Strict):
    """tier1_latents@encodec. Real run: weights facebook/encodec_24khz (a cached hub id or a
    save_pretrained folder); encodec_size only shapes a random init (a checkpoint has its config)."""

    weights: str = "random-init"  # embedded default: offline, labelled random-init
    encodec_size: Literal["full", "tiny"] = "tiny"
    init_seed: int = Field(0, ge=0)


class Phase0Tier1Injection(Strict):
    """tier1_injection: rollouts of each representation's k = 1 model (same utterances and starts)."""

    utterances: int = Field(16, ge=1)  # eval utterances, drawn by id with the global seed
    starts: int = Field(8, ge=1)  # start points per utterance, at fixed fractions of its length
    steps: int = Field(16, ge=1)  # K predicted steps per rollout
    inject_every: int = Field(4, ge=1)  # mode B: the whole window is reset to ground truth every this many steps


class Phase0Tier1(Strict):
    """Tier 1 stages (tier1_vmf, tier1_mdn, tier1_injection, tier1_compare); lane README, "Tier 1"."""

    encoders: list[Literal["mel", "mimi", "encodec"]] = ["mel", "mimi", "encodec"]
    common_rate: float = Field(12.5, gt=0.0, le=100.0)  # Hz every representation is also pooled to
    window: int = Field(8, ge=1, le=256)  # W context frames ending k frames before the target
    lags: list[int] = [1, 2, 4, 8]  # gaps k before a one-step delta (not horizons)
    hidden: int = Field(1024, ge=1)  # MLP hidden width (GELU), both families
    mdn_components: int = Field(8, ge=1, le=256)  # diagonal Gaussians of the MDN
    # passes over the train samples, equal for every representation (a fraction = a partial pass;
    # the real run: a few whole passes, e.g. 5)
    epochs: float = Field(0.25, gt=0.0)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0.0)  # AdamW
    weight_decay: float = Field(1e-4, ge=0.0)
    grad_clip: float = Field(1.0, gt=0.0)  # max global grad norm
    eval_per_speaker: int = Field(400, ge=1)  # eval samples per eval speaker (every speaker covered)
    trim: float = Field(0.1, ge=0.0, lt=0.5)  # trimmed mean cuts this fraction at each end
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads for tier1_vmf / tier1_mdn / tier1_injection (the hidden-1024 matmuls);
    # fixed, not "all cores", so every machine sums in the same order.
    threads: int = Field(2, ge=1)
    injection: Phase0Tier1Injection = Phase0Tier1Injection()
    mel: Phase0Tier1Mel = Phase0Tier1Mel()  # tier1_latents, per encoder (native rate)
    mimi: Phase0Tier1Mimi = Phase0Tier1Mimi()
    encodec: Phase0Tier1Encodec = Phase0Tier1Encodec()

    @field_validator("lags")
    @classmethod
    def _tier1_lags(cls, v: list[int]) -> list[int]:
        if not v or any(lag < 1 for lag in v) or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct ints >= 1")
        return sorted(v)

    @field_validator("encoders")
    @classmethod
    def _tier1_encoders(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct encoder names")
        return v


class Phase0(Strict):
    latents: Phase0Latents = Phase0Latents()
    split: Phase0Split = Phase0Split()
    encoder: Phase0Encoder = Phase0Encoder()
    frames: Phase0Frames = Phase0Frames()
    context: Phase0Context = Phase0Context()
    conditioning: Phase0Conditioning = Phase0Conditioning()
    metrics: Phase0Metrics = Phase0Metrics()
    decision: Phase0Decision = Phase0Decision()
    tier1: Phase0Tier1 = Phase0Tier1()



SCHEMA = Phase0

# The few headline columns `audioprobe exp show phase0` puts side by side per experiment (the
# whole metrics file is wider than a terminal; `dvc metrics show` and `dvc exp show --json` have all).
EXP_SHOW = ['decision', 'best_scheme', 'best_eval_vr', 'mean_vq64.eval_vr', 'mean_vq64.eval_vr_random']
