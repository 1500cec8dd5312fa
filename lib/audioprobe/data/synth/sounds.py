"""Procedural environmental sounds, noise colours and music (numpy only, seeded).

Each generator takes a numpy Generator, a duration and a sample rate and returns
float32 audio in [-1, 1]. They are simple by design: distinct spectro-temporal
signatures per class, so classifiers and encoders have real structure to find.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter

Gen = Callable[[np.random.Generator, float, int], np.ndarray]


def _t(dur: float, sr: int) -> np.ndarray:
    return np.arange(int(round(dur * sr))) / sr


def _norm(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    m = np.max(np.abs(x))
    return (x / m * peak).astype(np.float32) if m > 0 else x.astype(np.float32)


def white(rng, dur, sr):
    return _norm(rng.standard_normal(int(round(dur * sr))))


def pink(rng, dur, sr):
    # Paul Kellet's economy pink filter: -3 dB/octave to within 0.05 dB above 9 Hz
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    return _norm(lfilter(b, a, rng.standard_normal(int(round(dur * sr)))))


def brown(rng, dur, sr):
    x = np.cumsum(rng.standard_normal(int(round(dur * sr))))
    return _norm(x - np.convolve(x, np.ones(801) / 801, mode="same"))


def _lowpass(x, sr, fc):
    a = np.exp(-2 * np.pi * fc / sr)
    return lfilter([1 - a], [1, -a], x)


def _bandnoise(rng, n, sr, lo, hi):
    x = rng.standard_normal(n)
    return _lowpass(x, sr, hi) - _lowpass(x, sr, lo)


def _events(rng, dur, sr, rate, make_event, jitter=1.0):
    """Poisson-ish train of events (rate per second) summed into one signal."""
    n = int(round(dur * sr))
    out = np.zeros(n)
    t = rng.uniform(0, 1.0 / rate)
    while t < dur:
        ev = make_event()
        i = int(t * sr)
        m = min(len(ev), n - i)
        out[i : i + m] += ev[:m]
        t += rng.exponential(1.0 / rate) * jitter + (1 - jitter) / rate
    return out


def rain(rng, dur, sr):
    n = int(round(dur * sr))
    drops = _events(rng, dur, sr, 120, lambda: rng.uniform(0.2, 1) * np.exp(-np.arange(200) / 30) * rng.standard_normal(200))
    return _norm(0.5 * _bandnoise(rng, n, sr, 800, 6000) + drops)


def sea_waves(rng, dur, sr):
    t = _t(dur, sr)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.08, 0.2) * t + rng.uniform(0, 6.3))
    return _norm(env**2 * _lowpass(rng.standard_normal(t.size), sr, 900))


def crackling_fire(rng, dur, sr):
    n = int(round(dur * sr))
    pops = _events(rng, dur, sr, 25, lambda: rng.uniform(0.3, 1) * np.exp(-np.arange(120) / 10) * rng.standard_normal(120))
    return _norm(0.15 * brown(rng, dur, sr)[:n] + pops)


def crickets(rng, dur, sr):
    t = _t(dur, sr)
    f = rng.uniform(3800, 5200)
    chirp_rate = rng.uniform(2, 4)
    gate = (np.sin(2 * np.pi * chirp_rate * t) > 0.3) * (np.sin(2 * np.pi * 30 * t) > 0)
    return _norm(gate * np.sin(2 * np.pi * f * t))


def chirping_birds(rng, dur, sr):
    def chirp():
        d = rng.uniform(0.05, 0.15)
        tt = _t(d, sr)
        f0, f1 = rng.uniform(2000, 3500), rng.uniform(3500, 6000)
        ph = 2 * np.pi * (f0 * tt + (f1 - f0) * tt**2 / (2 * d))
        return np.sin(ph) * np.hanning(tt.size)
    return _norm(_events(rng, dur, sr, 6, chirp))


def water_drops(rng, dur, sr):
    def drop():
        tt = _t(0.08, sr)
        f = rng.uniform(600, 1500) * (1 + 3 * tt / 0.08)
        return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tt / 0.015)
    return _norm(_events(rng, dur, sr, 4, drop))


def wind(rng, dur, sr):
    t = _t(dur, sr)
    env = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t))
    return _norm(env * _bandnoise(rng, t.size, sr, 100, 700))


def clapping(rng, dur, sr):
    return _norm(_events(rng, dur, sr, 5, lambda: np.exp(-np.arange(800) / 80) * _bandnoise(rng, 800, sr, 700, 4000), jitter=0.3))


def footsteps(rng, dur, sr):
    step = lambda: np.exp(-np.arange(1600) / 250) * _lowpass(rng.standard_normal(1600), sr, 400)
    return _norm(_events(rng, dur, sr, rng.uniform(1.5, 2.2), step, jitter=0.1))


def door_wood_knock(rng, dur, sr):
    def knock():
        tt = _t(0.06, sr)
        return np.sin(2 * np.pi * rng.uniform(150, 250) * tt) * np.exp(-tt / 0.012)
    return _norm(_events(rng, dur, sr, 3, knock, jitter=0.2))


def mouse_click(rng, dur, sr):
    return _norm(_events(rng, dur, sr, 2, lambda: np.exp(-np.arange(60) / 6) * rng.standard_normal(60)))


def clock_tick(rng, dur, sr):
    def tick():
        tt = _t(0.02, sr)
        return np.sin(2 * np.pi * 3000 * tt) * np.exp(-tt / 0.003)
    return _norm(_events(rng, dur, sr, 1.0, tick, jitter=0.0))


def clock_alarm(rng, dur, sr):
    t = _t(dur, sr)
    f = rng.uniform(800, 1200)
    gate = np.sin(2 * np.pi * 4 * t) > 0
    return _norm(gate * np.sign(np.sin(2 * np.pi * f * t)) * 0.5)


def siren(rng, dur, sr):
    t = _t(dur, sr)
    f = 700 + 350 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t)
    return _norm(np.sin(2 * np.pi * np.cumsum(f) / sr))


def car_horn(rng, dur, sr):
    t = _t(dur, sr)
    f = rng.uniform(380, 450)
    gate = np.zeros_like(t)
    for start in np.sort(rng.uniform(0, dur - 0.6, size=rng.integers(1, 4))):
        gate[(t >= start) & (t < start + rng.uniform(0.3, 0.6))] = 1
    tone = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 1.26, 2, 3))
    return _norm(gate * tone)


def engine(rng, dur, sr):
    t = _t(dur, sr)
    f = rng.uniform(25, 45)
    saw = 2 * ((f * t) % 1) - 1
    return _norm(_lowpass(saw + 0.3 * rng.standard_normal(t.size), sr, 300))


def helicopter(rng, dur, sr):
    t = _t(dur, sr)
    gate = 0.3 + 0.7 * (np.sin(2 * np.pi * rng.uniform(10, 16) * t) > 0.6)
    return _norm(gate * _lowpass(rng.standard_normal(t.size), sr, 500))


def church_bells(rng, dur, sr):
    def bell():
        tt = _t(2.0, sr)
        f = rng.choice([392.0, 440.0, 494.0, 523.0])
        parts = [(1, 1.0), (2.0, 0.6), (2.4, 0.4), (3.0, 0.25), (4.2, 0.2)]
        return sum(a * np.sin(2 * np.pi * f * r * tt) * np.exp(-tt / (0.8 / r)) for r, a in parts)
    return _norm(_events(rng, dur, sr, 1.0, bell, jitter=0.0))


# ---- animals (ESC-50 targets 0-9): pitched, harmonic, formant-shaped calls. They are the
# hard negatives of a speech detector: voiced, with a pitch contour and vowel-like
# resonances, yet no phonetic sequence.


def _formants(x, sr, formants):
    """Sum of two-pole resonators at (centre Hz, bandwidth Hz, gain): a vocal-tract-like filter."""
    out = np.zeros_like(x)
    for fc, bw, g in formants:
        r = np.exp(-np.pi * bw / sr)
        a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
        out += g * (1 - r) * lfilter([1.0], a, x)
    return out


def _call(rng, sr, dur, f0, formants, harmonics=12, rough=0.0, breath=0.05, attack=0.01, release=0.05):
    """One voiced call: a harmonic source on the pitch contour f0(t) through formant filters.

    f0 is a callable of normalised time u in [0, 1] returning Hz; `rough` adds
    amplitude modulation at ~f0/2 (growl, croak), `breath` adds aspiration noise.
    """
    tt = _t(dur, sr)
    u = tt / max(dur, 1e-9)
    f = np.asarray(f0(u), dtype=np.float64) * (1 + 0.01 * _lowpass(rng.standard_normal(tt.size), sr, 8) * 20)
    ph = 2 * np.pi * np.cumsum(f) / sr
    src = sum(np.sin(h * ph) / h for h in range(1, harmonics + 1) if np.all(h * f < sr / 2 - 200))
    if rough:
        src = src * (1 - rough + rough * np.abs(np.sin(ph / 2)))
    src = src + breath * rng.standard_normal(tt.size)
    env = np.minimum(1, tt / attack) * np.minimum(1, (dur - tt) / release).clip(0, 1)
    return _formants(src, sr, formants) * env


def dog(rng, dur, sr):
    def bark():
        f = rng.uniform(350, 650)
        return _call(rng, sr, rng.uniform(0.12, 0.25), lambda u: f * (1 + 0.3 * np.sin(np.pi * u)),
                     [(rng.uniform(500, 800), 150, 1.0), (rng.uniform(1200, 1800), 200, 0.6)], rough=0.5, breath=0.3)
    return _norm(_events(rng, dur, sr, rng.uniform(1.5, 3.0), bark, jitter=0.5))


def rooster(rng, dur, sr):
    def crow():
        f = rng.uniform(450, 650)
        d = rng.uniform(1.0, 1.6)
        contour = lambda u: f * (1 + 0.6 * np.minimum(1, u / 0.15)) * (1 - 0.35 * np.maximum(0, u - 0.7) / 0.3)
        return _call(rng, sr, d, contour, [(1000, 250, 1.0), (2200, 300, 0.7), (3300, 400, 0.3)], rough=0.3)
    return _norm(_events(rng, dur, sr, 0.4, crow, jitter=0.3))


def pig(rng, dur, sr):
    def grunt():
        f = rng.uniform(90, 160)
        return _call(rng, sr, rng.uniform(0.15, 0.35), lambda u: f * (1 - 0.2 * u),
                     [(rng.uniform(300, 500), 120, 1.0), (1000, 200, 0.4)], harmonics=25, rough=0.8, breath=0.4)
    return _norm(_events(rng, dur, sr, 3, grunt, jitter=0.6))


def cow(rng, dur, sr):
    def moo():
        f = rng.uniform(110, 160)
        d = rng.uniform(0.8, 1.6)
        contour = lambda u: f * (1 + 0.25 * np.sin(np.pi * np.minimum(1, u * 1.2)))
        return _call(rng, sr, d, contour, [(rng.uniform(280, 380), 80, 1.0), (rng.uniform(700, 900), 120, 0.5)],
                     harmonics=20, attack=0.15, release=0.3, breath=0.02)
    return _norm(_events(rng, dur, sr, 0.5, moo, jitter=0.3))


def frog(rng, dur, sr):
    def croak():
        f = rng.uniform(180, 320)
        pulses = rng.uniform(25, 50)
        tt = _t(rng.uniform(0.15, 0.3), sr)
        x = _call(rng, sr, tt.size / sr, lambda u: f + 0 * u, [(rng.uniform(600, 1200), 250, 1.0)], rough=0.2)
        return x * (np.sin(2 * np.pi * pulses * tt) > 0)
    return _norm(_events(rng, dur, sr, rng.uniform(2, 4), croak, jitter=0.3))


def cat(rng, dur, sr):
    def meow():
        f = rng.uniform(450, 700)
        d = rng.uniform(0.4, 0.9)
        contour = lambda u: f * (1 + 0.5 * np.sin(np.pi * u) - 0.2 * u)
        # the formant glides from an 'i' to an 'au'-like resonance as the mouth opens
        first = _call(rng, sr, d, contour, [(900, 200, 1.0), (2500, 300, 0.6)], attack=0.05, release=0.15)
        second = _call(rng, sr, d, contour, [(1400, 200, 1.0), (2000, 300, 0.6)], attack=0.05, release=0.15)
        w = np.linspace(0, 1, first.size)
        return (1 - w) * first + w * second
    return _norm(_events(rng, dur, sr, 0.8, meow, jitter=0.4))


def hen(rng, dur, sr):
    def cluck():
        f = rng.uniform(300, 450)
        return _call(rng, sr, rng.uniform(0.06, 0.12), lambda u: f * (1 + 0.4 * u),
                     [(1200, 300, 1.0), (2800, 400, 0.5)], rough=0.4, breath=0.2)
    return _norm(_events(rng, dur, sr, 5, cluck, jitter=0.7))


def insects(rng, dur, sr):
    t = _t(dur, sr)
    f = rng.uniform(180, 600)  # wing-beat buzz
    saw = 2 * ((f * t * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))) % 1) - 1
    env = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t) ** 2
    return _norm(env * _formants(saw, sr, [(f * 3, 300, 1.0), (f * 7, 500, 0.5)]))


def sheep(rng, dur, sr):
    def baa():
        f = rng.uniform(200, 350)
        vib = rng.uniform(6, 10)
        d = rng.uniform(0.5, 1.0)
        contour = lambda u: f * (1 + 0.08 * np.sin(2 * np.pi * vib * u * d)) * (1 - 0.1 * u)
        return _call(rng, sr, d, contour, [(700, 150, 1.0), (1300, 200, 0.7), (2600, 300, 0.3)],
                     rough=0.15, attack=0.03, release=0.2)
    return _norm(_events(rng, dur, sr, 0.8, baa, jitter=0.4))


def crow(rng, dur, sr):
    def caw():
        f = rng.uniform(350, 550)
        return _call(rng, sr, rng.uniform(0.2, 0.4), lambda u: f * (1 - 0.15 * u),
                     [(1300, 350, 1.0), (2200, 400, 0.8)], harmonics=15, rough=0.7, breath=0.5)
    return _norm(_events(rng, dur, sr, 1.5, caw, jitter=0.4))


ANIMALS = ("dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow")

# ESC-50 official target ids and category names of the procedurally generated classes.
ESC50_CLASSES: dict[str, tuple[int, Gen]] = {
    "rain": (10, rain), "sea_waves": (11, sea_waves), "crackling_fire": (12, crackling_fire),
    "crickets": (13, crickets), "chirping_birds": (14, chirping_birds),
    "water_drops": (15, water_drops), "wind": (16, wind), "clapping": (22, clapping),
    "footsteps": (25, footsteps), "door_wood_knock": (30, door_wood_knock),
    "mouse_click": (31, mouse_click), "clock_alarm": (37, clock_alarm),
    "clock_tick": (38, clock_tick), "helicopter": (40, helicopter), "siren": (42, siren),
    "car_horn": (43, car_horn), "engine": (44, engine), "church_bells": (46, church_bells),
    "dog": (0, dog), "rooster": (1, rooster), "pig": (2, pig), "cow": (3, cow), "frog": (4, frog),
    "cat": (5, cat), "hen": (6, hen), "insects": (7, insects), "sheep": (8, sheep), "crow": (9, crow),
}
# Order used when params ask for the first N classes: the most distinct first.
ESC50_ORDER = [
    "rain", "siren", "clock_tick", "engine", "chirping_birds", "door_wood_knock",
    "church_bells", "crickets", "sea_waves", "car_horn", "clapping", "water_drops",
    "wind", "footsteps", "crackling_fire", "mouse_click", "clock_alarm", "helicopter",
    # the animals come last, so the first 18 classes (and every corpus drawn from them) are unchanged
    *ANIMALS,
]

NOISES: dict[str, Gen] = {"white": white, "pink": pink, "brown": brown, "wind": wind,
                          "engine": engine, "rain": rain}

_SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
           "pentatonic": [0, 2, 4, 7, 9]}


def music(rng: np.random.Generator, dur: float, sr: int) -> np.ndarray:
    """A short tune: melody over sustained chords, random key, scale, tempo and timbre."""
    t_total = int(round(dur * sr))
    out = np.zeros(t_total)
    root = 48 + int(rng.integers(0, 12))
    scale = _SCALES[rng.choice(list(_SCALES))]
    beat = 60.0 / rng.uniform(70, 160)
    n_harm = int(rng.integers(1, 6))
    decay = rng.uniform(0.1, 0.6)

    def note(midi, d, amp):
        tt = _t(d, sr)
        f = 440.0 * 2 ** ((midi - 69) / 12)
        tone = sum(np.sin(2 * np.pi * f * h * tt) / h**1.5 for h in range(1, n_harm + 1))
        return amp * tone * np.exp(-tt / decay) * np.minimum(1, tt / 0.01)

    pos = 0.0
    while pos < dur:
        deg = int(rng.integers(0, len(scale)))
        midi = root + 12 + scale[deg] + 12 * int(rng.integers(0, 2))
        d = beat * rng.choice([0.5, 1, 1, 2])
        ev = note(midi, d * 1.5, 0.5)
        i = int(pos * sr)
        m = min(ev.size, t_total - i)
        out[i : i + m] += ev[:m]
        if rng.random() < 0.3:  # a chord under the melody
            for iv in (0, 4 if 4 in scale else 3, 7):
                ch = note(root + iv, d * 2, 0.2)
                m = min(ch.size, t_total - i)
                out[i : i + m] += ch[:m]
        pos += d
    return _norm(out)
