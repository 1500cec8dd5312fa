"""Answer scoring: normalisation, exact match, MCQ letter accuracy, yes/no accuracy, token F1.

Normalisation (SQuAD-style): lower-case, punctuation removed, the articles a/an/the
dropped, whitespace collapsed. A row's kind decides which extra score applies:
`mcq` when the gold answer is a single option letter A-D (optionally bracketed), `yes_no`
when the gold normalises to "yes" or "no", `open` otherwise. Per-row scores are 0/1
(token F1 in [0, 1]); a score that does not apply to a row is None, never 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_LETTER = re.compile(r"^\(?([a-d])\)?(?:[\s.:)]|$)", re.IGNORECASE)


def normalize(text: str) -> str:
    """Return text lower-cased, without punctuation or articles, whitespace collapsed."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(pred: str, gold: str) -> int:
    """Return 1 when the normalised prediction equals the normalised gold answer."""
    return int(normalize(pred) == normalize(gold))


def option_letter(text: str) -> str | None:
    """Return the option letter (A-D) a text starts with ('B', 'b)', '(C) dog', 'D. x'), else None."""
    m = _LETTER.match(text.strip())
    return m.group(1).upper() if m else None


def kind(gold: str) -> str:
    """Return 'mcq' | 'yes_no' | 'open' for a gold answer."""
    g = gold.strip()
    if option_letter(g) is not None and len(normalize(g).split()) <= 1 and len(g) <= 3:
        return "mcq"
    if normalize(g) in ("yes", "no"):
        return "yes_no"
    return "open"


def letter_correct(pred: str, gold: str) -> int | None:
    """1/0 when the gold is an option letter: the prediction's leading letter equals it; else None."""
    if kind(gold) != "mcq":
        return None
    return int(option_letter(pred) == option_letter(gold))


def yes_no_correct(pred: str, gold: str) -> int | None:
    """1/0 when the gold is yes/no: the prediction's first normalised word equals it; else None."""
    if kind(gold) != "yes_no":
        return None
    words = normalize(pred).split()
    return int(bool(words) and words[0] == normalize(gold))


def token_f1(pred: str, gold: str) -> float:
    """Return the F1 of the normalised token bags (1.0 when both are empty)."""
    p, g = normalize(pred).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def score(pred: str, gold: str) -> dict:
    """Return every per-row score: em, letter (or None), yes_no (or None), f1, kind."""
    return {
        "kind": kind(gold),
        "em": exact_match(pred, gold),
        "letter": letter_correct(pred, gold),
        "yes_no": yes_no_correct(pred, gold),
        "f1": token_f1(pred, gold),
    }
