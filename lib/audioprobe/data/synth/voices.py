"""eSpeak 'speakers': voices, variants, pitches, rates and gains drawn from a seeded RNG."""

from __future__ import annotations

import numpy as np

from audioprobe.data.synth.espeak import Voice

# English voices shipped in espeak-ng-data/lang/gmw; variants from voices/!v.
LANGUAGES = ["en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "croak", "adam", "anika", "belinda", "david"]
FEMALE = {"f1", "f2", "f3", "f4", "f5", "anika", "belinda"}


def draw_voice(rng: np.random.Generator, rate: tuple[int, int] = (120, 210)) -> Voice:
    """One random speaker."""
    return Voice(
        language=str(rng.choice(LANGUAGES)),
        variant=str(rng.choice(VARIANTS)),
        rate=int(rng.integers(rate[0], rate[1] + 1)),
        pitch=int(rng.integers(25, 76)),
        pitch_range=int(rng.integers(20, 81)),
    )


def sex(voice: Voice) -> str:
    return "F" if voice.variant in FEMALE else "M"
