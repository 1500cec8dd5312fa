"""Seeded English sentences from a small grammar (LibriSpeech-style uppercase transcripts)."""

from __future__ import annotations

import numpy as np

_ADJ = "OLD YOUNG QUIET BRIGHT DARK SMALL GREAT GENTLE COLD WARM STRANGE HAPPY TIRED PROUD".split()
_NOUN = ("MAN WOMAN CHILD HOUSE RIVER GARDEN LETTER CAPTAIN DOCTOR HORSE WINDOW FOREST "
         "VILLAGE SHIP MORNING STORY SISTER FATHER TABLE ROAD").split()
_VERB = "SAW FOUND CARRIED WATCHED REMEMBERED FOLLOWED OPENED LEFT CALLED ANSWERED".split()
_PREP = "NEAR BEHIND ACROSS BESIDE BEYOND UNDER INTO TOWARD".split()
_ADV = "SLOWLY SUDDENLY QUIETLY AT LAST THEN AGAIN OFTEN".split()


def clause(rng: np.random.Generator) -> list[str]:
    words = ["THE", str(rng.choice(_ADJ)), str(rng.choice(_NOUN)), str(rng.choice(_VERB)),
             "THE", str(rng.choice(_NOUN))]
    if rng.random() < 0.6:
        words += [str(rng.choice(_PREP)), "THE", str(rng.choice(_NOUN))]
    if rng.random() < 0.3:
        words.insert(0, str(rng.choice(_ADV)))
    return words


def sentence(rng: np.random.Generator, n_words: int) -> str:
    """An uppercase sentence of at least n_words words, clauses joined with AND."""
    words = clause(rng)
    while len(words) < n_words:
        words += ["AND", *clause(rng)]
    return " ".join(words)
