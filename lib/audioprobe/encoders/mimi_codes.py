"""Mimi codes -> dequantised embeddings with the first K RVQ levels (K=1: semantic only, K=8: full codec).

Loading and provenance are phase0's (`encoders.mimi.load_mimi`: a local .safetensors or
a cached hub id, never downloaded); this adapter only changes what is read out: the
waveform is quantised to K codebooks and the codes are mapped back to the quantiser's
continuous output (`decode_latent`), i.e. what a downstream model sees of the codec's
discrete tokens. A random Mimi has all-zero codebooks, so every code is 0 and every
frame identical: `allow_random_init` exists for plumbing tests, and is labelled.
"""

from __future__ import annotations

import warnings

import torch

from audioprobe.encoders.interface import Encoder
from audioprobe.encoders.mimi import load_mimi
from audioprobe.runtime.errors import WeightsError
from audioprobe.runtime.provenance import RANDOM_INIT


class MimiCodesEncoder(Encoder):
    """Return dequantised Mimi embeddings [B, F, 512] from K codebooks at 12.5 Hz (real model)."""

    def __init__(self, base: Encoder, codebooks: int):
        super().__init__()
        self.model = base.model  # the frozen MimiModel phase0's loader built
        total = int(self.model.total_codebooks)
        if not 1 <= codebooks <= total:
            raise WeightsError(f"mimi: {codebooks} codebooks asked for, the model has {total}")
        self.codebooks = codebooks
        self.name = "mimi_semantic" if codebooks == 1 else f"mimi_{codebooks}q"
        self.sample_rate, self.hop, self.frame_rate = base.sample_rate, base.hop, base.frame_rate
        self.dim = base.dim  # the quantiser maps codes back to the latent width (512 for the real model)
        self.provenance = {**base.provenance, "codebooks": str(codebooks)}

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Return [B, ceil(S / hop), dim] dequantised embeddings of waves [B, S]."""
        self.model.set_num_codebooks(self.codebooks)
        x = wave.to(self.device, torch.float32)[:, None, :]  # (B, 1, S)
        codes = self.model.encode(x)  # (B, K, F)
        emb = self.model.decode_latent(codes)  # (B, D, F)
        return emb.transpose(1, 2)  # (B, F, D)


def load_mimi_codes(weights: str, codebooks: int, size: str = "full", allow_random_init: bool = False,
                    init_seed: int = 0, device: str | torch.device = "cpu",
                    param: str = "reason.encoders.mimi_full") -> MimiCodesEncoder:
    """Return a MimiCodesEncoder; missing weights stop with one line unless allow_random_init."""
    try:
        base = load_mimi(weights, size=size, device=device, init_seed=init_seed, param=f"{param}.weights")
    except WeightsError as exc:
        if not allow_random_init:
            raise WeightsError(f"{exc}; or set {param}.allow_random_init: true") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = load_mimi(RANDOM_INIT, size=size, device=device, init_seed=init_seed, param=f"{param}.weights")
        warnings.warn(f"{param}: RANDOM Mimi weights (allow_random_init: true)", stacklevel=2)
    enc = MimiCodesEncoder(base, codebooks)
    enc.name = "mimi_semantic" if codebooks == 1 else "mimi_full"
    return enc
