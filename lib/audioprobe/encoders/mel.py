"""Log-mel frames pooled to a codec-like frame rate: the encoder that needs no weights."""

from __future__ import annotations

import torch

from audioprobe.audio.mel import log_mel
from audioprobe.encoders.interface import Encoder


class MelEncoder(Encoder):
    """Return log-mel features averaged over each codec frame ([B, F, n_mels]).

    The STFT uses a 25 ms window and a 10 ms hop (the kws features: n_fft 400, hop
    160 at 16 kHz); each output frame is the mean of the `hop / stft_hop` log-mel
    frames whose centres fall in it (8 at 12.5 Hz). Every wave is right-padded with
    zeros by one extra frame before the centred STFT, so a frame never sees the
    reflect padding of the signal's end: an item's frames are then the same alone
    or inside a zero-padded batch.
    """

    name = "mel"

    def __init__(self, sample_rate: int = 16000, frame_rate: float = 12.5, n_mels: int = 80):
        super().__init__()
        hop = sample_rate / frame_rate
        self.stft_hop = round(0.010 * sample_rate)
        self.n_fft = round(0.025 * sample_rate)
        if hop != int(hop) or int(hop) % self.stft_hop:
            raise ValueError(
                f"mel encoder: sample_rate / frame_rate = {hop:g} must be a whole multiple of "
                f"the 10 ms STFT hop ({self.stft_hop} samples)"
            )
        self.sample_rate = int(sample_rate)
        self.hop = int(hop)
        self.frame_rate = float(frame_rate)
        self.dim = int(n_mels)
        self.pool = self.hop // self.stft_hop
        # No weights: an empty buffer lets `.to(device)` choose where encode() runs.
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)
        self.provenance = {
            "name": "mel",
            "weights": "none",  # parameter-free: nothing was learned or initialised
            "sha256": "none",
            "config": f"log-mel n_mels={n_mels} n_fft={self.n_fft} stft_hop={self.stft_hop} "
            f"pool={self.pool} sr={sample_rate}",
        }

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Return [B, ceil(S / hop), n_mels] log-mel frames of waves [B, S]."""
        frames = self.num_frames(wave.shape[-1])
        padded = torch.nn.functional.pad(wave.float(), (0, (frames + 1) * self.hop - wave.shape[-1]))
        mel = log_mel(padded, self.sample_rate, n_mels=self.dim, n_fft=self.n_fft, hop=self.stft_hop)
        mel = mel[:, : frames * self.pool]  # (B, F·pool, n_mels)
        return mel.reshape(wave.shape[0], frames, self.pool, self.dim).mean(dim=2)  # (B, F, n_mels)
