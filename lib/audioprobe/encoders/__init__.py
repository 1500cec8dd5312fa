"""Waveform encoders with one interface: encode(wave[B, S]) -> [B, F, dim] (see interface.py).

`mel`: log-mel pooled to a codec frame rate (no weights, the embedded default);
`mimi`: Kyutai Mimi's continuous pre-quantisation latents (moshi package);
`encodec`: Meta EnCodec 24 kHz pre-quantisation latents (transformers EncodecModel).
"""

from __future__ import annotations

from typing import Any

import torch

from audioprobe.parallel.device import pick_device
from audioprobe.encoders.interface import Encoder
from audioprobe.runtime.errors import ParamsError

__all__ = ["Encoder", "build_encoder", "pick_device"]


def build_encoder(cfg: Any, device: str | torch.device = "cpu", param: str = "phase0.encoder") -> Encoder:
    """Return the encoder named by `cfg.name` on `device`, with its provenance recorded.

    `cfg` has the fields of params.Phase0Encoder (name, weights, mimi_size, init_seed,
    n_mels, mel_sample_rate, mel_frame_rate; encodec_size for encodec); `param` is the
    params key errors name.
    """
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    name = get("name", "mel")
    device = pick_device(device) if isinstance(device, str) else device
    if name == "mel":
        from audioprobe.encoders.mel import MelEncoder

        try:
            enc: Encoder = MelEncoder(
                sample_rate=get("mel_sample_rate", 16000),
                frame_rate=get("mel_frame_rate", 12.5),
                n_mels=get("n_mels", 80),
            )
        except ValueError as exc:
            raise ParamsError(f"params.yaml: {param}.mel_sample_rate / mel_frame_rate: {exc}") from None
        return enc.to(device)
    if name == "mimi":
        from audioprobe.encoders.mimi import load_mimi

        return load_mimi(
            get("weights", ""), size=get("mimi_size", "full"), device=device,
            init_seed=get("init_seed", 0), param=f"{param}.weights",
        )
    if name == "encodec":
        from audioprobe.encoders.encodec import load_encodec

        return load_encodec(
            get("weights", ""), size=get("encodec_size", "full"), device=device,
            init_seed=get("init_seed", 0), param=f"{param}.weights",
        )
    raise ParamsError(f"params.yaml: {param}.name must be 'mel', 'mimi' or 'encodec', got {name!r}")
