"""Which language a message is in, offline (py3langid: the langid.py model, shipped inside its wheel, ~0.2 ms a
message). The safety layer screens explicit risk phrases in SCREENED languages; a message confidently identified as
another language is flagged `language_unsupported` rather than silently screened as if it were English.

Short messages are where identifiers guess ("ok thanks" is 55% English), so a message is only called unsupported
with at least MIN_WORDS words and MIN_CONFIDENCE; anything less sure counts as screened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCREENED = ("en", "es", "fr", "de", "pt")  # explicit-phrase rules exist for these (perception/safety.py)
MIN_WORDS = 3
MIN_CONFIDENCE = 0.9


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    code: str  # ISO 639-1, as py3langid names it
    confidence: float  # normalised probability of `code`
    screened: bool  # explicit-phrase rules cover it, or the guess is too unsure to say otherwise


class LanguageId:
    name = "py3langid"

    def __init__(self, identifier: Any) -> None:
        self._id = identifier

    def identify(self, text: str) -> LanguageGuess:
        code, p = self._id.classify(text)
        p = float(p)
        sure = p >= MIN_CONFIDENCE and len(text.split()) >= MIN_WORDS
        return LanguageGuess(code=str(code), confidence=round(p, 3), screened=code in SCREENED or not sure)


def load_language_id() -> LanguageId:
    """The identifier over langid.py's 97 languages (its model file ships in the py3langid wheel)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageId(LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True))
