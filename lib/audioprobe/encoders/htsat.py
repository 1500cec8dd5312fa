"""HTSAT (msclap's 2023 CLAP audio encoder): framewise patch tokens before pooling.

msclap 1.3.4 is installed with --no-deps (its pins cannot co-install with this venv's
torch / transformers / numpy). Two of its parts are unusable here, so every workaround
lives in this one module:
- `import msclap` runs the package __init__, which imports CLAPWrapper -> torchaudio
  (not installed: its wheels break CPU torch). `_import_htsat` registers a bare parent
  package module for `msclap` first, so `msclap.models.htsat` imports without that
  __init__ ever running.
- `msclap.CLAP` always downloads gpt2 and the checkpoint: it is never used. The HTSAT
  weights come from a local `CLAP_weights_2023.pth` (or the local HF cache), loaded
  with `torch.load(weights_only=True)`, so no pickled code runs.

Clip handling follows the 2023 release's own config (`configs/config_2023.yml`: sample
rate and clip duration, read at load time, never hard-coded): audio at that rate is
cut into windows of `duration` seconds (the last one zero-padded). Per window, the
final LayerNorm's tokens (the origin's hook point: [64, 768]) are put back in time
order through the token-semantic layout (4 time chunks x 8 columns = 32 time steps, 2
frequency groups each) and the 2 frequency groups are averaged: 32 frames of 768 per
window. Frames past a clip's end are dropped.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import types
import warnings
from pathlib import Path

import torch
import yaml

from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import WeightsError
from audioprobe.runtime.provenance import RANDOM_INIT, sha256_file

_HUB_ID = re.compile(r"^(hf://)?[\w.-]+/[\w.-]+(/[\w./-]+)?$")
_DEFAULT_HUB_FILE = "CLAP_weights_2023.pth"
_PREFIX = "audio_encoder.base.htsat."  # where the CLAP checkpoint keeps the HTSAT weights


def _msclap_dir() -> Path:
    spec = importlib.util.find_spec("msclap") if "msclap" not in sys.modules else None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    mod = sys.modules.get("msclap")
    if mod is not None and getattr(mod, "__path__", None):
        return Path(list(mod.__path__)[0])
    raise WeightsError("msclap is not installed; `pip install --no-deps msclap==1.3.4` (see the Makefile)")


def _import_htsat():
    """Return msclap.models.htsat without running msclap/__init__.py (it imports torchaudio)."""
    if "msclap" not in sys.modules:
        pkg = types.ModuleType("msclap")
        pkg.__path__ = [str(_msclap_dir())]  # a bare package: submodules resolve, __init__ never runs
        sys.modules["msclap"] = pkg
    from msclap.models import htsat

    return htsat


def clap_config() -> dict:
    """Return the 2023 CLAP release config (sampling_rate, duration, ...) shipped with msclap."""
    return yaml.safe_load((_msclap_dir() / "configs" / "config_2023.yml").read_text())


def resolve_htsat_weights(weights: str, param: str) -> Path | None:
    """Return the local checkpoint path, or None when nothing is available offline."""
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if _HUB_ID.match(weights):  # owner/name[/file] in the local HF cache (never downloaded)
        from huggingface_hub import hf_hub_download

        parts = weights.removeprefix("hf://").split("/")
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or _DEFAULT_HUB_FILE
        try:
            return Path(hf_hub_download(repo, filename, local_files_only=True))
        except Exception:  # not in the local cache, or not a hub id at all
            return None
    return None


class HtsatEncoder(Encoder):
    """Return HTSAT frames [B, F, 768] (32 per `duration`-second window) of waves at the CLAP rate."""

    name = "htsat"

    def __init__(self, model: torch.nn.Module, provenance: dict[str, str], sample_rate: int, duration: float):
        super().__init__()
        self.model = model.eval().requires_grad_(False)  # a frozen feature extractor
        self.sample_rate = int(sample_rate)
        self.window = int(round(duration * sample_rate))  # samples per HTSAT input
        grid = model.spec_size // model.patch_stride[1] // 2 ** (len(model.depths) - 1)  # 8 token columns
        self.groups = grid // model.freq_ratio  # frequency groups per time step (2)
        self.steps = grid * model.freq_ratio  # time steps per window (32)
        self.hop = int(round(self.window / self.steps))  # nominal; num_frames is exact
        self.frame_rate = self.steps / duration
        self.dim = int(model.num_features)
        self.provenance = provenance
        self._tokens: torch.Tensor | None = None
        # The origin's hook point: the final LayerNorm's patch tokens, before any pooling.
        model.norm.register_forward_hook(lambda _m, _i, out: setattr(self, "_tokens", out))

    def num_frames(self, n_samples: int) -> int:
        """Frames for n samples: ceil(n * steps / window) (32 per full window)."""
        return -(-int(n_samples) * self.steps // self.window)

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Return [B, ceil(S * 32 / window), 768] time-ordered token frames of waves [B, S]."""
        B, S = wave.shape
        n_win = max(1, math.ceil(S / self.window))
        x = torch.nn.functional.pad(wave.to(self.device, torch.float32), (0, n_win * self.window - S))
        x = x.reshape(B * n_win, self.window)  # (B·W, window)
        self.model(x)
        tok = self._tokens  # (B·W, 64, C), row-major over the 8 x 8 token grid
        C, g = tok.shape[-1], self.steps // self.model.freq_ratio  # g = 8 columns per chunk
        grid = tok.transpose(1, 2).reshape(B * n_win, C, self.model.freq_ratio, self.groups, g)  # (B·W, C, 4, 2, 8)
        frames = grid.permute(0, 1, 3, 2, 4).reshape(B * n_win, C, self.groups, self.steps)  # (B·W, C, 2, 32)
        frames = frames.mean(dim=2).transpose(1, 2)  # (B·W, 32, C): time order, frequency groups averaged
        frames = frames.reshape(B, n_win * self.steps, C)  # (B, W·32, C)
        return frames[:, : self.num_frames(S)]


def load_htsat(weights: str, allow_random_init: bool = False, init_seed: int = 0,
               device: str | torch.device = "cpu", param: str = "reason.encoders.htsat") -> HtsatEncoder:
    """Return an HtsatEncoder with CLAP 2023 weights, or a labelled random init when allowed and absent."""
    path = resolve_htsat_weights(weights, f"{param}.weights")  # first: a missing file fails fast
    cfg = clap_config()
    sr, duration = int(cfg["sampling_rate"]), float(cfg["duration"])
    if path is None:
        if not allow_random_init:
            raise WeightsError(
                f"params.yaml: {param}.weights = {weights!r}: no CLAP 2023 checkpoint offline; put "
                f"CLAP_weights_2023.pth (huggingface.co/microsoft/msclap) under data/local/ and point "
                f"{param}.weights at it, or set {param}.allow_random_init: true for a labelled random HTSAT"
            )
        htsat = _import_htsat()
        warnings.warn(f"htsat runs with RANDOM weights ({param}.allow_random_init: true)", stacklevel=2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            model = htsat.HTSAT_Swin_Transformer(config=htsat.config)
        prov = {"name": "htsat", "weights": RANDOM_INIT, "sha256": RANDOM_INIT, "init_seed": str(init_seed)}
        return HtsatEncoder(model, prov, sr, duration).to(device)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"params.yaml: {param}.weights = {weights!r}: {path} is not a weights-only "
                           f"torch checkpoint ({type(exc).__name__})") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else {}
    sub = {k.split(_PREFIX, 1)[1]: v for k, v in state.items() if _PREFIX in k}
    if not sub:
        raise WeightsError(f"params.yaml: {param}.weights = {weights!r}: {path} holds no '{_PREFIX}*' keys "
                           "(not a CLAP 2023 checkpoint)")
    htsat = _import_htsat()
    model = htsat.HTSAT_Swin_Transformer(config=htsat.config)
    missing, unexpected = model.load_state_dict(sub, strict=False)
    real_missing = [k for k in missing if not k.startswith(("spectrogram_extractor", "logmel_extractor"))]
    if real_missing or unexpected:
        raise WeightsError(f"params.yaml: {param}.weights = {weights!r}: {path} does not fit HTSAT "
                           f"({len(real_missing)} missing, {len(unexpected)} unexpected keys, e.g. "
                           f"{(real_missing + list(unexpected))[:2]})")
    prov = {"name": "htsat", "weights": weights, "sha256": sha256_file(path),
            "config": f"clap-2023 sr={sr} duration={duration:g}s"}
    return HtsatEncoder(model, prov, sr, duration).to(device)
