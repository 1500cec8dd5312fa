"""Classic speech detectors scoring whole clips in [0, 1]: WebRTC VAD, Silero VAD and a plain energy detector.

Every detector starts each clip from a clean state (a fresh WebRTC `Vad`, Silero's
`reset_states()`): the origin scored clips back to back through one Silero model, so a
clip's score depended on the clips before it. Each scorer times its four components
(audio load, features, model, post-processing) per clip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import webrtcvad

from audioprobe.detect.hygiene import pcm16, read_clip
from audioprobe.detect.labels import SR
from audioprobe.runtime.provenance import sha256_file



@dataclass
class Timer:
    """Milliseconds per component of one clip."""

    ms: dict[str, float] = field(default_factory=dict)
    _t: float = 0.0

    def start(self) -> None:
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.ms[name] = (now - self._t) * 1000
        self._t = now


class WebRtc:
    """Fraction of `frame_ms` frames WebRTC VAD calls speech (origin: aggressiveness 1, 30 ms)."""

    name, kind = "webrtc", "fraction"

    def __init__(self, mode: int, frame_ms: int):
        self.mode, self.frame = mode, SR * frame_ms // 1000

    def provenance(self) -> dict:
        return {"source": "no weights", "sha256": None, "package": f"webrtcvad-wheels {metadata.version('webrtcvad-wheels')}"}

    def score(self, wave: np.ndarray, t: Timer) -> float:
        pcm = pcm16(wave)
        n = pcm.size // self.frame
        frames = [pcm[i * self.frame : (i + 1) * self.frame].tobytes() for i in range(n)]
        t.lap("features_ms")
        vad = webrtcvad.Vad(self.mode)  # fresh state per clip
        flags = [vad.is_speech(f, SR) for f in frames]
        t.lap("model_ms")
        out = float(np.mean(flags)) if flags else 0.0
        t.lap("post_ms")
        return out


class Silero:
    """Mean speech probability over 512-sample chunks of Silero VAD (weights from the wheel).

    A trailing partial chunk is dropped (zero padding would add silence), unless the clip
    is shorter than one chunk, which is then zero-padded.
    """

    name, kind = "silero", "probability"

    def __init__(self, chunk: int = 512, threads: int = 1):
        import torch
        from silero_vad import load_silero_vad

        torch.set_num_threads(threads)
        self.torch, self.chunk = torch, chunk
        self.model = load_silero_vad(onnx=False)
        self.weights = Path(str(resources.files("silero_vad.data").joinpath("silero_vad.jit")))

    def provenance(self) -> dict:
        return {"source": f"silero-vad-{metadata.version('silero-vad')}/silero_vad.jit",
                "sha256": sha256_file(self.weights), "package": f"silero-vad {metadata.version('silero-vad')}"}

    def score(self, wave: np.ndarray, t: Timer) -> float:
        n = max(1, wave.size // self.chunk)
        x = np.zeros(n * self.chunk, np.float32)
        m = min(x.size, wave.size)
        x[:m] = wave[:m]
        chunks = self.torch.from_numpy(x).reshape(n, 1, self.chunk)  # [chunks, batch 1, samples]
        t.lap("features_ms")
        self.model.reset_states()  # every clip starts from a clean state
        # Silero is TorchScript: its profiling executor fuses ops into code compiled for the
        # host CPU, which ignores the pinned kernel ISA (scores moved in the 6th decimal on an
        # AVX-512 machine). Unoptimised execution runs the pinned ATen kernels: same scores here,
        # same speed (measured on 40 chunks).
        with self.torch.no_grad(), self.torch.jit.optimized_execution(False):
            probs = [float(self.model(c, SR)) for c in chunks]
        t.lap("model_ms")
        out = float(np.mean(probs))
        t.lap("post_ms")
        return out


class Energy:
    """Fraction of frames louder than the clip's noise floor (10th percentile frame energy) + margin_db."""

    name, kind = "energy", "fraction"

    def __init__(self, frame_ms: int, margin_db: float):
        self.frame, self.margin = SR * frame_ms // 1000, margin_db

    def provenance(self) -> dict:
        return {"source": "no weights", "sha256": None, "package": "numpy"}

    def score(self, wave: np.ndarray, t: Timer) -> float:
        n = max(1, wave.size // self.frame)
        frames = np.zeros(n * self.frame)
        m = min(frames.size, wave.size)
        frames[:m] = wave[:m]
        db = 10 * np.log10(np.mean(frames.reshape(n, self.frame) ** 2, axis=1) + 1e-12)  # [frames]
        t.lap("features_ms")
        active = db > np.percentile(db, 10) + self.margin
        t.lap("model_ms")
        out = float(active.mean())
        t.lap("post_ms")
        return out


BASELINES = ("webrtc", "silero", "energy")  # each writes data/detect/scores/<name>/


def make(name: str, cfg) -> WebRtc | Silero | Energy:
    """The scorer for a baseline name, configured from params `detect.baselines`."""
    if name == "webrtc":
        return WebRtc(cfg.webrtc_mode, cfg.webrtc_frame_ms)
    if name == "silero":
        return Silero(cfg.silero_chunk, cfg.threads)
    return Energy(cfg.energy_frame_ms, cfg.energy_margin_db)


def score_clips(scorer, root: Path, rels: list[str], durations_ms: list[int]) -> tuple[list[float], list[dict[str, float]]]:
    """Scores in [0, 1] and per-component latencies (ms) for each clip file, in order."""
    scores, lat = [], []
    for rel, dur in zip(rels, durations_ms):
        t = Timer()
        t.start()
        wave = read_clip(root, rel, dur)
        t.lap("load_ms")
        scores.append(min(1.0, max(0.0, scorer.score(wave, t))))
        lat.append(dict(t.ms))
    return scores, lat
