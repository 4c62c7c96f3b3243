"""Communication style read from the user's own wording (no model: transparent features)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z']+")
_CONTRACTION = re.compile(r"\b\w+'(s|re|ve|ll|d|m|t)\b", re.I)
_SLANG = frozenset(
    "lol lmao omg idk tbh u ur gonna wanna gotta ya yeah yep nope hey hi sup btw thx pls plz dude bro kinda sorta".split()
)
_FORMAL = frozenset(
    "please would could kindly regards sincerely dear however therefore furthermore appreciate assistance "
    "regarding request inquire".split()
)
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|[:;]-?[)(DPp]")


@dataclass(frozen=True, slots=True)
class Style:
    """formality, verbosity in [0, 1]; word count of the message they were read from."""

    formality: float
    verbosity: float
    words: int


def read_style(text: str) -> Style:
    words = _WORD.findall(text)
    n = len(words)
    if n == 0:
        return Style(formality=0.5, verbosity=0.0, words=0)
    lower = [w.lower() for w in words]
    score = 0.5
    score += 0.12 * min(3, sum(w in _FORMAL for w in lower))
    score -= 0.12 * min(3, sum(w in _SLANG for w in lower))
    score -= 0.08 * min(3, len(_CONTRACTION.findall(text)))
    score -= 0.1 * min(2, len(_EMOJI.findall(text)))
    score -= 0.1 * min(2, text.count("!!") + text.count("??"))
    stripped = text.strip()
    if stripped[:1].islower():
        score -= 0.1
    if stripped[-1:] in ".?" and stripped[:1].isupper():
        score += 0.05
    if sum(w.isupper() and len(w) > 2 for w in words) >= 2:
        score -= 0.1
    # Verbosity on a log scale: 1 word -> 0, ~60 words -> 1.
    verbosity = min(1.0, math.log1p(n - 1) / math.log(60))
    return Style(formality=min(1.0, max(0.0, score)), verbosity=verbosity, words=n)
