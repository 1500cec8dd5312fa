"""Read and write mono audio files with soundfile, rejecting bad audio with one clear error."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from audioprobe.runtime.errors import DataError


class AudioError(DataError, ValueError):
    """Bad audio: the message names the file and what is wrong with it.

    A DataError, so a stage that meets bad audio prints one line (not a traceback).
    """


def read_audio(path: str | Path, expected_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Return (samples float32 [n], sample_rate) of a mono file; raise AudioError if bad.

    Rejected: non-audio bytes, truncated files, empty audio, stereo, NaN/inf samples,
    and a sample rate other than `expected_sr` when one is given.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError for junk
        raise AudioError(f"{path}: not a readable audio file ({_short(exc)})") from None
    short = _wav_shortfall(path) if info.format == "WAV" else None
    if short:
        raise AudioError(f"{path}: truncated audio, {short}")
    if info.channels != 1:
        raise AudioError(f"{path}: has {info.channels} channels, expected mono; downmix it first")
    if expected_sr is not None and info.samplerate != expected_sr:
        raise AudioError(
            f"{path}: sample rate {info.samplerate} Hz, expected {expected_sr} Hz; resample it"
        )
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:
        raise AudioError(f"{path}: truncated or corrupt audio ({_short(exc)})") from None
    if info.frames > 0 and wave.shape[0] < info.frames:
        raise AudioError(
            f"{path}: truncated audio, header says {info.frames} frames but {wave.shape[0]} read"
        )
    if wave.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError(f"{path}: contains NaN or inf samples")
    return wave, int(sr)


def write_audio(path: str | Path, wave: np.ndarray, sr: int, subtype: str | None = None) -> None:
    """Write a mono float waveform atomically (temp file, then rename); format from suffix."""
    path = Path(path)
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(f"{path}: refusing to write {wave.ndim}-D audio, expected mono [n]")
    if wave.size == 0 or not np.isfinite(wave).all():
        raise AudioError(f"{path}: refusing to write empty or non-finite audio")
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported suffix, use .wav or .flac")
    subtype = subtype or "PCM_16"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # PCM_16 clips at full scale; clip explicitly so the result never depends on
    # libsndfile's clipping mode.
    sf.write(str(tmp), np.clip(wave, -1.0, 1.0 - 2**-15), sr, format=fmt, subtype=subtype)
    os.replace(tmp, path)


def check_audio_files(paths: list[Path], expected_sr: int | None = None) -> list[str]:
    """Return one error line per bad file (empty list when all are readable)."""
    errors = []
    for p in paths:
        try:
            read_audio(p, expected_sr)
        except AudioError as exc:
            errors.append(str(exc))
    return errors


def _wav_shortfall(path: Path) -> str | None:
    """Say how many data bytes a RIFF/WAVE header promises that the file lacks (None if complete).

    libsndfile silently shortens a cut WAV to the bytes present, so only the header
    shows the truncation.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # RF64 / W64 and friends: left to libsndfile
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, n = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                if n in (0, 0xFFFFFFFF):  # streaming writers leave the size unset
                    return None
                have = size - pos - 8
                return f"header promises {n} data bytes but the file holds {have}" if n > have else None
            pos += 8 + n + (n & 1)  # chunks are word-aligned
    return None


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
