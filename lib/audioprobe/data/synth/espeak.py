"""Speak text with eSpeak NG through ctypes (the espeakng-loader wheel ships the library).

eSpeak keeps state inside a process (intonation history, voice tables, libc rand()
seeded from the clock), so the same call can give different samples depending on what
was spoken before and when. Each batch of
utterances therefore runs in a fresh forked process that loads the library itself:
a batch's audio depends only on the batch's own jobs, whatever ran before or beside it.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_espeakCHARS_UTF8 = 1
_espeakENDPAUSE = 0x1000
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_POS_CHARACTER = 1


@dataclass(frozen=True)
class Voice:
    """An eSpeak 'speaker': language voice + variant and prosody settings."""

    language: str  # e.g. "en-us"
    variant: str  # e.g. "f3" (voices/!v/<variant>)
    rate: int  # words per minute, 80..450
    pitch: int  # 0..99 (50 = normal)
    pitch_range: int  # 0..99
    volume: int = 100  # 0..200
    word_gap: int = 0  # extra pause between words, units of 10 ms

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}"


@dataclass(frozen=True)
class SpeakJob:
    text: str
    voice: Voice


def _speak_in_this_process(jobs: Sequence[SpeakJob]) -> tuple[int, list[np.ndarray]]:
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    sr = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
    )
    if sr <= 0:
        raise RuntimeError("eSpeak NG failed to initialise from the espeakng-loader wheel")

    chunks: list[np.ndarray] = []
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )

    def _collect(wav, n, _events):  # eSpeak calls this with each block of samples
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    cb = callback_type(_collect)
    lib.espeak_SetSynthCallback(cb)
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]
    out = []
    for job in jobs:
        v = job.voice
        if lib.espeak_SetVoiceByName(v.name.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {v.name!r}")
        # Every parameter is set before every utterance so none carries over.
        for key, val in ((_RATE, v.rate), (_VOLUME, v.volume), (_PITCH, v.pitch),
                         (_RANGE, v.pitch_range), (_WORDGAP, v.word_gap)):
            lib.espeak_SetParameter(key, int(val), 0)
        # eSpeak NG seeds its noise generator (breathy variants such as f5 use it) from
        # the clock at start-up; a fixed seed per utterance makes the output time-free.
        lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
        chunks.clear()
        text = job.text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(text)
        lib.espeak_Synth(buf, len(text), 0, _POS_CHARACTER, 0,
                         _espeakCHARS_UTF8 | _espeakENDPAUSE, None, None)
        lib.espeak_Synchronize()
        wave = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        out.append((wave.astype(np.float32) / 32768.0))
    lib.espeak_Terminate()
    return sr, out


def _worker(jobs: Sequence[SpeakJob]) -> tuple[int, list[np.ndarray]]:
    return _speak_in_this_process(jobs)


def speak_batches(
    batches: Sequence[Sequence[SpeakJob]], processes: int = 2
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Yield (sample_rate, [wave float32 per job]) per batch, in order, each from a fresh process.

    A batch's audio does not depend on scheduling or on the other batches.
    """
    ctx = mp.get_context("fork")
    with ctx.Pool(processes=max(1, processes), maxtasksperchild=1) as pool:
        yield from pool.imap(_worker, list(batches), chunksize=1)
