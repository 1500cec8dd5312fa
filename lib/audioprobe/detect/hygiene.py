"""Clip hygiene: WebRTC VAD activity of each clean source segment, the keep rule, and rebalancing.

A SPEECH clip must be mostly voice (activity >= speech_min_active) and a NONSPEECH clip
must hold (almost) none (activity <= nonspeech_max_active), measured on the clean
segment before mixing (the origin's rule: mode 3, 30 ms frames). Failing candidates are
dropped; each cell x split then keeps exactly its quota, taken round-robin over the
cell's strata (speech dataset, or non-speech type) so the shares stay as equal as the
passing candidates allow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import webrtcvad

from audioprobe.audio.io import read_audio
from audioprobe.detect.params import DetectHygiene
from audioprobe.detect.labels import SPEECH, SR
from audioprobe.runtime.errors import DataError

CELL = ["label", "duration_ms", "snr_db"]


def pcm16(wave: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> int16 samples (what WebRTC VAD reads)."""
    return (np.clip(wave, -1.0, 1.0 - 2**-15) * 32768.0).astype(np.int16)


def webrtc_activity(vad: webrtcvad.Vad, wave: np.ndarray, frame_ms: int, sr: int = SR) -> float:
    """Fraction of whole `frame_ms` frames WebRTC VAD calls speech (0.0 for a clip shorter than one frame)."""
    frame = sr * frame_ms // 1000
    pcm = pcm16(wave)
    n = pcm.size // frame
    if n == 0:
        return 0.0
    return sum(vad.is_speech(pcm[i * frame : (i + 1) * frame].tobytes(), sr) for i in range(n)) / n


def read_clip(root: Path, rel: str, duration_ms: int) -> np.ndarray:
    """Read one clip file; a clip of another length than its cell's duration is an error naming it."""
    wave, sr = read_audio(root / rel, expected_sr=SR)
    want = SR * duration_ms // 1000
    if wave.size != want:
        raise DataError(f"{root / rel}: {wave.size} samples, expected {want} ({duration_ms} ms at {SR} Hz); "
                        f"rerun detect_dataset")
    return wave


def clip_activity(root: Path, rel: str, duration_ms: int, cfg: DetectHygiene) -> float:
    """WebRTC activity of one written clip file (the clean segment), with a fresh VAD."""
    # a fresh VAD per clip: WebRTC adapts its noise model across calls (state, like Silero's)
    return webrtc_activity(webrtcvad.Vad(cfg.vad_mode), read_clip(root, rel, duration_ms), cfg.frame_ms)


def keeps(label: str, activity: float, cfg: DetectHygiene) -> bool:
    """The keep rule: SPEECH needs activity >= speech_min_active, NONSPEECH activity <= nonspeech_max_active."""
    return activity >= cfg.speech_min_active if label == SPEECH else activity <= cfg.nonspeech_max_active


def measure(table: pl.DataFrame, root: Path, cfg: DetectHygiene) -> pl.DataFrame:
    """`table` plus `vad_activity` (clean segment) and `passes` (the keep rule)."""
    act = [clip_activity(root, rel, d, cfg) for rel, d in zip(table["clean"], table["duration_ms"])]
    keep = [keeps(label, a, cfg) for label, a in zip(table["label"], act)]
    return table.with_columns(pl.Series("vad_activity", act, pl.Float64), pl.Series("passes", keep, pl.Boolean))


def stratum(t: pl.DataFrame) -> pl.Expr:
    return pl.when(pl.col("label") == SPEECH).then(pl.col("source_dataset")).otherwise(pl.col("nonspeech_type"))


def rebalance(measured: pl.DataFrame, quota: dict[str, int]) -> pl.DataFrame:
    """Keep `quota[split]` passing clips per cell x split, round-robin over strata; error when short."""
    t = measured.with_columns(stratum(measured).alias("stratum"))
    keep: list[str] = []
    groups = t.sort("clip_id").group_by([*CELL, "split"], maintain_order=True)
    for k, ((label, dur, snr, split), cell) in enumerate(groups):
        want = quota[split]
        queues = [g["clip_id"].to_list() for _, g in
                  cell.filter(pl.col("passes")).sort("clip_id").group_by("stratum", maintain_order=True)]
        queues.sort(key=lambda q: q[0])
        if queues:  # rotate who gets the remainder, so no stratum is favoured in every cell
            r = k % len(queues)
            queues = queues[r:] + queues[:r]
        got: list[str] = []
        while len(got) < want and any(queues):
            for q in queues:
                if q and len(got) < want:
                    got.append(q.pop(0))
        if len(got) < want:
            raise DataError(
                f"detect_hygiene: cell {label} {dur} ms {snr:+g} dB, split {split}: {len(got)} of "
                f"{cell.height} candidates pass the VAD rule, need {want}; rerun detect_dataset (it draws until "
                f"the rule can fill each cell, up to detect.dataset.max_oversample), raise max_oversample "
                f"or relax detect.hygiene thresholds"
            )
        keep.extend(got)
    return t.filter(pl.col("clip_id").is_in(keep)).drop("stratum").sort("clip_id")


def drops(measured: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    """Per cell and stratum: candidates, failing the VAD rule, kept."""
    t = measured.with_columns(stratum(measured).alias("type"),
                              pl.col("clip_id").is_in(kept["clip_id"].implode()).alias("kept"))
    return (t.group_by([*CELL, "type"]).agg(
        pl.len().alias("candidates"), (~pl.col("passes")).sum().alias("failed_vad"),
        pl.col("kept").sum().alias("kept"), pl.col("vad_activity").mean().round(4).alias("mean_activity"))
        .sort([*CELL, "type"]))


def counts(kept: pl.DataFrame) -> pl.DataFrame:
    """Clips per cell (label x duration x SNR) and split: one row per cell, a column per split."""
    c = kept.group_by([*CELL, "split"]).len("clips")
    wide = c.pivot(on="split", index=CELL, values="clips").fill_null(0)
    for s in ("train", "dev", "test"):
        if s not in wide.columns:
            wide = wide.with_columns(pl.lit(0).alias(s))
    return wide.select([*CELL, "train", "dev", "test"]).with_columns(
        (pl.col("train") + pl.col("dev") + pl.col("test")).alias("total")).sort(CELL)
