"""Waveform encoders with one interface: encode(wave[B, S]) -> [B, F, dim] (see interface.py), and
the one factory every lane builds them with (`build_encoder`).

`mel`: log-mel pooled to a frame rate (no weights, the embedded default);
`mimi`: Kyutai Mimi's continuous pre-quantisation latents (moshi package; phase0);
`encodec`: Meta EnCodec 24 kHz pre-quantisation latents (transformers EncodecModel; phase0 Tier 1);
`htsat`: msclap 2023 CLAP's HTSAT patch tokens (reason);
`mimi_semantic` / `mimi_full`: Mimi codes with 1 / 8 codebooks, dequantised (reason).
Frames of a list of audio items are written and read through `audioprobe.encoders.store`.
"""

from __future__ import annotations

from typing import Any

import torch

from audioprobe.parallel.device import pick_device
from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import ParamsError

__all__ = ["ENCODERS", "Encoder", "build_encoder", "pick_device"]
ENCODERS = ("mel", "mimi", "encodec", "htsat", "mimi_semantic", "mimi_full")


def build_encoder(cfg: Any, device: str | torch.device = "cpu", *, param: str) -> Encoder:
    """Return the encoder named by `cfg["name"]` on `device`, with its provenance recorded.

    `cfg`: the params group that configures it (a pydantic model or a dict) plus its `name`:
    phase0.encoder, phase0.tier1.<enc>, or reason.encoders.<enc>. Mel reads `n_mels`,
    `sample_rate` and `frame_rate` (a group that configures several encoders prefixes the last two
    with `mel_`, as phase0.encoder does); the others read `weights`, `init_seed`, their model size
    and, in reason's groups, `allow_random_init`. `param` is the params key that errors name.
    """
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    name = get("name")
    device = pick_device(device) if isinstance(device, str) else device
    if name == "mel":
        from audioprobe.encoders.mel import MelEncoder

        pre = "" if get("sample_rate") is not None else "mel_"
        try:
            enc: Encoder = MelEncoder(sample_rate=get(f"{pre}sample_rate", 16000),
                                      frame_rate=get(f"{pre}frame_rate", 12.5), n_mels=get("n_mels", 80))
        except ValueError as exc:
            raise ParamsError(f"params.yaml: {param}.{pre}sample_rate / {pre}frame_rate: {exc}") from None
        return enc.to(device)
    if name == "mimi":
        from audioprobe.encoders.mimi import load_mimi

        return load_mimi(get("weights", ""), size=get("mimi_size", "full"), device=device,
                         init_seed=get("init_seed", 0), param=f"{param}.weights")
    if name == "encodec":
        from audioprobe.encoders.encodec import load_encodec

        return load_encodec(get("weights", ""), size=get("encodec_size", "full"), device=device,
                            init_seed=get("init_seed", 0), param=f"{param}.weights")
    if name == "htsat":
        from audioprobe.encoders.htsat import load_htsat

        return load_htsat(get("weights", ""), allow_random_init=get("allow_random_init", False),
                          init_seed=get("init_seed", 0), device=device, param=param)
    if name in ("mimi_semantic", "mimi_full"):
        from audioprobe.encoders.mimi_codes import load_mimi_codes

        return load_mimi_codes(get("weights", ""), codebooks=1 if name == "mimi_semantic" else 8,
                               size=get("mimi_size", "full"), allow_random_init=get("allow_random_init", False),
                               init_seed=get("init_seed", 0), device=device, param=param)
    raise ParamsError(f"params.yaml: {param}.name must be one of {', '.join(ENCODERS)}, got {name!r}")
