"""The one typed schema for params.yaml; every stage validates through it.

An unknown key, a wrong type or an out-of-range value raises ParamsError with one
line naming the key and what is allowed. `dvc exp run -S` rewrites params.yaml
through OmegaConf, so params.yaml holds plain values only (no `${}`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audioprobe.errors import ParamsError


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are never coerced from other types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Source = Literal["embedded", "path", "url"]


# ----------------------------------------------------------------------------- data
class DatasetSource(Strict):
    """Where one dataset comes from; the layout on disk is always the official one."""

    source: Source = "embedded"
    path: str = ""  # local copy in the official layout (source: path)
    url: str = ""  # official archive (source: url)
    sha256: str = ""  # of the archive at `url`; verified before extraction


class SpeechCommandsEmbedded(Strict):
    seed: int = Field(0, ge=0)
    speakers: int = Field(24, ge=1, le=400)
    words: int = Field(35, ge=2, le=35)  # first N of the 35 official words
    noise_seconds: float = Field(20.0, gt=0.0, le=120.0)


class SpeechCommands(DatasetSource):
    embedded: SpeechCommandsEmbedded = SpeechCommandsEmbedded()


class LibriSpeechEmbedded(Strict):
    seed: int = Field(0, ge=0)
    speakers: int = Field(24, ge=1, le=400)
    utterances: int = Field(4, ge=1, le=100)  # per speaker
    min_seconds: float = Field(3.0, ge=0.5)
    max_seconds: float = Field(12.0, le=35.0)


class LibriSpeech(DatasetSource):
    subset: str = "train-clean-100"
    embedded: LibriSpeechEmbedded = LibriSpeechEmbedded()


class Esc50Embedded(Strict):
    seed: int = Field(0, ge=0)
    classes: int = Field(10, ge=2)
    clips_per_fold: int = Field(2, ge=1)  # 5 folds each


class Esc50(DatasetSource):
    embedded: Esc50Embedded = Esc50Embedded()


class MusanEmbedded(Strict):
    seed: int = Field(0, ge=0)
    music: int = Field(12, ge=1)
    noise: int = Field(12, ge=1)
    speech: int = Field(12, ge=1)
    seconds: float = Field(4.0, gt=0.0, le=60.0)


class Musan(DatasetSource):
    embedded: MusanEmbedded = MusanEmbedded()


class ReasonAqaEmbedded(Strict):
    seed: int = Field(0, ge=0)
    rows: int = Field(360, ge=8)
    clips: int = Field(60, ge=4)  # distinct audio clips the questions are about


class ReasonAqa(DatasetSource):
    embedded: ReasonAqaEmbedded = ReasonAqaEmbedded()


class Data(Strict):
    speech_commands: SpeechCommands = SpeechCommands()
    librispeech: LibriSpeech = LibriSpeech()
    esc50: Esc50 = Esc50()
    musan: Musan = Musan()
    reasonaqa: ReasonAqa = ReasonAqa()


class DataReport(Strict):
    hist_bins: int = Field(40, ge=2, le=1000)


# ------------------------------------------------------------------------------ kws
# (kws section: owned by the kws lane; each sub-model belongs to one stage)
class KwsFeatures(Strict):
    """kws_features stage: log(mel power + 1e-9) of every clip, 16 kHz, 1 s (EXPERIMENTS.md §1)."""

    n_mels: int = Field(80, ge=1, le=512)
    n_fft: int = Field(400, ge=16, le=16000)  # 25 ms window
    hop: int = Field(160, ge=1, le=16000)  # 10 ms: 101 frames per clip


class KwsLif(Strict):
    """LIF gate options (EXPERIMENTS.md §1); the inits of t, l, s are fixed by the definition."""

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


class KwsTrain(Strict):
    """kws_train stage: the origin recipe; one run per condition x replica (dvc matrix).

    A run's torch seed is derived from the global `seed` and its replica, so
    `dvc exp run -S seed=668` retrains every replica with new seeds.
    """

    replicas: list[int] = Field([0, 1, 2], min_length=1, max_length=64)
    epochs: int = Field(30, ge=1, le=10000)
    batch_size: int = Field(64, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0.0, le=1.0)  # AdamW
    weight_decay: float = Field(0.01, ge=0.0, le=1.0)  # on 2-D weights only
    grad_clip: float = Field(1.0, gt=0.0)  # max global grad norm
    eval_batch_size: int = Field(256, ge=1, le=65536)
    threads: int = Field(2, ge=1, le=1024)  # torch CPU threads, fixed so CPU runs are bit-identical
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available

    @model_validator(mode="after")
    def _unique_replicas(self) -> "KwsTrain":
        if len(set(self.replicas)) != len(self.replicas) or min(self.replicas) < 0:
            raise ValueError(f"replicas must be distinct ints >= 0, got {self.replicas}")
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


# --------------------------------------------------------------------------- phase0
# (phase0 section: owned by the phase0 lane; each sub-model belongs to one stage)
class Phase0Latents(Strict):
    """latents stage: which utterances are encoded, and how."""

    # LibriSpeech subset folder(s) under the dataset root: one name, a list, or "all".
    subset: str | list[str] = "train-clean-100"
    min_seconds: float = Field(3.0, ge=0.0)  # the spec keeps utterances >= 3 s
    batch_size: int = Field(8, ge=1, le=1024)  # utterances per padded batch (sorted by length)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    load_workers: int = Field(2, ge=0, le=64)  # threads decoding + resampling audio


class Phase0Encoder(Strict):
    """latents stage: which encoder and its weights (audioprobe.encoders.build_encoder)."""

    name: Literal["mel", "mimi"] = "mel"
    # mimi: a local .safetensors path, a hub id (owner/name or owner/name/file, read from the
    # local HF cache only, never downloaded), or "random-init" (labelled random model).
    weights: str = "kyutai/moshiko-pytorch-bf16"
    mimi_size: Literal["full", "tiny"] = "full"  # tiny: small random config for tests
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
    kmeans_n_init: int = Field(10, ge=1, le=100)  # spec: k-means++, n_init 10, max_iter 100
    kmeans_max_iter: int = Field(100, ge=1, le=10000)
    # Seeded subsample of train contexts the k-means fits see (0 = all): the full 800 k
    # fit takes ~6 min on 2 cores and moved VR no more than seed noise (EXPERIMENTS.md §2).
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
    """phase0_report stage: the PASS rule (EXPERIMENTS.md §2), applied at one lag."""

    lag: int = Field(1, ge=1)  # must be one of phase0.context.lags
    vr_max: float = Field(0.6, gt=0.0)  # VR < this on train and eval
    degradation_max: float = Field(0.20, gt=0.0)  # (VR_eval − VR_train)/VR_train < this
    random_tolerance: float = Field(0.05, ge=0.0)  # |VR_random − 1| <= this on train and eval
    slice_vr_max: float = Field(0.65, gt=0.0)  # VR <= this on high-energy and medial slices
    # Also fail a scheme whose train or eval excluded mass is flagged (> excluded_mass_flag);
    # false gives the origin's rule. An all-excluded scheme fails either way (no VR).
    require_low_exclusion: bool = True


class Phase0(Strict):
    latents: Phase0Latents = Phase0Latents()
    split: Phase0Split = Phase0Split()
    encoder: Phase0Encoder = Phase0Encoder()
    frames: Phase0Frames = Phase0Frames()
    context: Phase0Context = Phase0Context()
    conditioning: Phase0Conditioning = Phase0Conditioning()
    metrics: Phase0Metrics = Phase0Metrics()
    decision: Phase0Decision = Phase0Decision()


# ----------------------------------------------------------------------------- root
class Params(Strict):
    seed: int = Field(42, ge=0, le=2**32 - 1)
    data: Data = Data()
    data_report: DataReport = DataReport()
    kws: Kws = Kws()
    phase0: Phase0 = Phase0()


def _field_path(loc: tuple) -> tuple:
    """Drop pydantic's union-member tags ('str', 'list[str]', ...) that are not params keys."""
    out: list = []
    model: type[BaseModel] | None = Params
    for part in loc:
        if isinstance(part, str) and (model is None or part not in model.model_fields):
            continue  # a union tag past a leaf, not a key
        out.append(part)
        field = model.model_fields.get(str(part)) if model is not None else None
        ann = field.annotation if field is not None else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return tuple(out)


def _format_error(err: dict[str, Any], source: str) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = ".".join(str(p) for p in err["loc"])
        parent_model = _model_at(Params, err["loc"][:-1])
        allowed = ", ".join(parent_model.model_fields) if parent_model else "see the schema"
        return f"{source}: unknown key '{key}'; allowed keys here: {allowed}"
    key = ".".join(str(p) for p in _field_path(err["loc"])) or "<root>"
    msg = err["msg"][0].lower() + err["msg"][1:]
    if kind == "value_error":  # a cross-field check: its message already says what is wrong
        return f"{source}: {key}: {msg.removeprefix('value error, ')}"
    return f"{source}: {key} {msg.removeprefix('input ')}, got {err.get('input')!r}"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def validate(raw: Any, source: str = "params.yaml") -> Params:
    """Return validated Params from a parsed mapping; raise ParamsError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errs = exc.errors()
        first = _format_error(errs[0], source)
        more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
        raise ParamsError(first + more) from None


def load(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return validate(raw or {}, str(path))


def load_group(group: str, path: str | Path = "params.yaml") -> Any:
    """Validate the whole file and return one group (dotted, e.g. 'data.esc50')."""
    node: Any = load(path)
    for part in group.split("."):
        node = getattr(node, part)
    return node
