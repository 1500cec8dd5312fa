"""params.yaml group `kws`: the kws lane's schema (one sub-model per stage)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from audioprobe.runtime.params import Strict

# The two conditions of every replica: base (identity gate) and lif (the LIF gate).
Condition = Literal["base", "lif"]
CONDITIONS: tuple[Condition, ...] = ("base", "lif")

# Schema defaults that are deliberately not params.yaml's (the embedded default): the origin's
# recipe on real Speech Commands v2 (lane README, "The origin recipe on real Speech Commands
# v2"), so a real run sets these keys to their defaults. Every other default equals params.yaml
# (tests/unit/runtime/test_params.py checks both ways).
_ORIGIN = "the origin's real-data recipe; params.yaml holds the smaller embedded default"
DIFFERS_FROM_PARAMS_YAML = {f"kws.{key}": _ORIGIN for key in (
    "features.n_mels", "features.n_fft", "features.hop",
    "model.n_mels", "model.n_embd", "model.n_layer", "model.mlp_hidden", "model.units",
    "train.epochs", "train.lr", "train.schedule", "train.warmup_epochs",
)}


class KwsFeatures(Strict):
    """kws_features stage: log(mel power + 1e-9) of every clip, 16 kHz, 1 s (lane README)."""

    n_mels: int = Field(80, ge=1, le=512)
    n_fft: int = Field(400, ge=16, le=16000)  # 25 ms window
    hop: int = Field(160, ge=1, le=16000)  # 10 ms: 101 frames per clip


class KwsLif(Strict):
    """LIF gate options (lane README); the inits of t, l, s are fixed by the definition."""

    # The origin paper writes y·‖x‖/‖y‖ but its code never applies it: off = origin code.
    norm_preserve: bool = False


class KwsModel(Strict):
    """Network shape (shared by kws_train and kws_analyze)."""

    n_mels: int = Field(80, ge=1, le=512)
    n_embd: int = Field(128, ge=4, le=4096)
    n_layer: int = Field(4, ge=1, le=64)
    mlp_hidden: int = Field(512, ge=1, le=16384)  # block MLP n_embd -> mlp_hidden -> n_embd
    units: int = Field(192, ge=1, le=8192)  # CfC state size (AutoNCP: inter + command + motor)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    # fast: our hand-written BPTT CfC (same outputs as ncps to 1e-5); ncps: the origin's module.
    cfc_impl: Literal["fast", "ncps"] = "fast"
    # autoncp: origin CfC(n_embd, AutoNCP(units, n_embd)); dense: CfC(n_embd, units, proj_size=n_embd).
    wiring: Literal["autoncp", "dense"] = "autoncp"
    wiring_sparsity: float = Field(0.5, ge=0.1, le=0.9)  # AutoNCP sparsity_level (ncps default)
    wiring_seed: int = Field(22222, ge=0, le=2**32 - 1)  # AutoNCP seed (ncps default, as in the origin)
    lif: KwsLif = KwsLif()

    @model_validator(mode="after")
    def _autoncp_fits(self) -> "KwsModel":
        # AutoNCP needs n_embd motor neurons plus at least one command and two inter neurons.
        if self.wiring == "autoncp" and self.units < self.n_embd + 3:
            raise ValueError(f"units must be >= n_embd + 3 = {self.n_embd + 3} for wiring autoncp, got {self.units}")
        return self


class KwsAugment(Strict):
    """Training-time augmentation of the cached log-mel clips (kws/augment.py); off = origin."""

    enabled: bool = False
    max_shift: int = Field(5, ge=0, le=1000)  # frames (hop samples each: 40 ms at hop 640, 10 ms at 160)
    gain_db: float = Field(6.0, ge=0.0, le=40.0)  # power gain drawn from [-gain_db, gain_db]
    noise_prob: float = Field(0.5, ge=0.0, le=1.0)  # share of clips mixed with _background_noise_
    snr_db: list[float] = Field([5.0, 25.0], min_length=2, max_length=2)  # SNR range, dB

    @field_validator("snr_db")
    @classmethod
    def _ordered(cls, v: list[float]) -> list[float]:
        if v[0] > v[1]:
            raise ValueError(f"must be [low, high] with low <= high, got {v}")
        return v


class KwsTrain(Strict):
    """kws_train stage: one stage per replica trains one run per condition.

    A run's torch seed is derived from the global `seed` and its replica, so
    `dvc exp run -S seed=668` retrains every replica with new seeds.
    """

    replicas: list[int] = Field([0, 1, 2], min_length=1, max_length=64)
    epochs: int = Field(30, ge=1, le=10000)
    batch_size: int = Field(64, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0.0, le=1.0)  # AdamW
    # constant: the origin's fixed lr; cosine: linear warm-up, then cosine decay to 0 per batch;
    # plateau: linear warm-up, then lr x plateau_factor whenever validation accuracy has not
    # improved for more than plateau_patience epochs, and a stop at the plateau after
    # plateau_reductions cuts (`epochs` is then the most it may run)
    schedule: Literal["constant", "cosine", "plateau"] = "constant"
    warmup_epochs: int = Field(0, ge=0, le=1000)
    plateau_patience: int = Field(1, ge=0, le=1000)
    plateau_factor: float = Field(0.1, gt=0.0, lt=1.0)
    plateau_reductions: int = Field(1, ge=0, le=100)
    weight_decay: float = Field(0.01, ge=0.0, le=1.0)  # on 2-D weights only
    grad_clip: float = Field(1.0, gt=0.0)  # max global grad norm
    eval_batch_size: int = Field(256, ge=1, le=65536)
    threads: int = Field(1, ge=1, le=1024)  # torch CPU threads, fixed so CPU runs are bit-identical
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available
    # Processes per run on this node (torchrun when > 1, through audioprobe.parallel.launch): DDP, same global batch_size.
    nproc: int = Field(1, ge=1, le=1024)
    # Runs of a replica (one per condition) trained at once, each its own process: 2 puts base
    # and lif side by side (with threads 1 they take one core each); 1 trains them in turn.
    parallel: int = Field(2, ge=1, le=len(CONDITIONS))
    amp: Literal["bf16", "none"] = "bf16"  # bf16 autocast on CUDA; the CPU always trains in fp32
    loader_workers: int = Field(2, ge=0, le=64)  # DataLoader workers on CUDA (pinned memory); CPU: 0
    augment: KwsAugment = KwsAugment()

    @model_validator(mode="after")
    def _unique_replicas(self) -> "KwsTrain":
        if len(set(self.replicas)) != len(self.replicas) or min(self.replicas) < 0:
            raise ValueError(f"replicas must be distinct ints >= 0, got {self.replicas}")
        return self

    @model_validator(mode="after")
    def _batch_splits_over_processes(self) -> "KwsTrain":
        # The global batch stays batch_size whatever nproc: each process takes batch_size / nproc.
        if self.batch_size % self.nproc:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by nproc {self.nproc}")
        return self


class KwsAnalyze(Strict):
    """kws_analyze stage: organisation metrics on the first `clips` test clips (by file name)."""

    clips: int = Field(512, ge=1)
    batch_size: int = Field(128, ge=1, le=65536)
    fire_threshold: float = Field(0.5, gt=0.0, lt=1.0)  # a unit fires on a frame when fire > this
    always_on_rate: float = Field(0.95, gt=0.0, le=1.0)  # unit always-on when its rate > this
    selective_rate: float = Field(0.5, gt=0.0, le=1.0)  # unit selective when its rate < this
    entropy_bins: int = Field(10, ge=2, le=1000)  # histogram of fire values on [0, 1]


class Kws(Strict):
    features: KwsFeatures = KwsFeatures()
    model: KwsModel = KwsModel()
    train: KwsTrain = KwsTrain()
    analyze: KwsAnalyze = KwsAnalyze()

    @model_validator(mode="after")
    def _mels_match(self) -> "Kws":
        if self.model.n_mels != self.features.n_mels:
            raise ValueError(
                f"model.n_mels ({self.model.n_mels}) must equal features.n_mels ({self.features.n_mels})"
            )
        return self


SCHEMA = Kws

# The few headline columns `audioprobe exp show kws` puts side by side per experiment (the
# whole metrics file is wider than a terminal; `dvc metrics show` and `dvc exp show --json` have all).
EXP_SHOW = ['base.test_acc.mean', 'lif.test_acc.mean', 'lif_gain.mean', 'ttest.p', 'hierarchy']
