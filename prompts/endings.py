"""Replies end on a complete sentence: near the token cap, the reply stops at the next sentence end, and a reply the
cap cuts mid-sentence is trimmed back to its last complete one.

Text streams through unchanged until the reply is within `margin` tokens of its cap; from there it is held back
until a sentence ends, released up to that end, and the stream is told to stop. The first words are never delayed.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s|$)")


class SentenceCloser:
    def __init__(self, max_tokens: int, margin: int = 32) -> None:
        self.max_tokens = max_tokens
        self.margin = min(margin, max(0, max_tokens // 2))
        self._tokens = 0
        self._held = ""
        self._released = 0  # characters released so far
        self.stop = False  # True once the reply has reached a sentence end inside the margin: end the stream here
        self.trimmed = ""  # what the cap cut mid-sentence and the user never saw
        self._tail = ""  # the end of what was released (does it close a sentence?)

    @property
    def tokens(self) -> int:
        """Model tokens seen so far (streamed pieces counted as one each, as vLLM streams them)."""
        return self._tokens

    def feed(self, text: str, tokens: int = 1) -> str:
        """Text the user may see now, out of `text` (a piece of `tokens` model tokens)."""
        self._tokens += tokens
        if self.stop:
            return ""
        if self._tokens < self.max_tokens - self.margin and not self._held:
            return self._release(text)
        self._held += text
        ends = list(_SENTENCE_END.finditer(self._held))
        if not ends:
            return ""
        cut = ends[-1].end()
        out, self._held = self._held[:cut], ""
        self.stop = True
        return self._release(out)

    def _release(self, text: str) -> str:
        self._released += len(text)
        self._tail = (self._tail + text)[-16:]
        return text

    def finish(self, finish_reason: str | None) -> str:
        """At the end of the stream: the held text, unless the cap cut it mid-sentence (then it is dropped, so the
        reply ends on its last complete sentence), or it is all there is."""
        held, self._held = self._held, ""
        if finish_reason == "length" and self._released > 0 and _SENTENCE_END.search(self._tail.rstrip() + " "):
            self.trimmed = held
            return ""
        return self._release(held)
