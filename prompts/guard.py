"""The output guard: what the model says is checked before the user sees it.

Two things a reply must never do, whatever the user asked for and whatever a small model improvises:
  - give self-harm or suicide methods, or encourage them;
  - turn hostility back on the user (insults, contempt, telling them to shut up or go away).

Replies stream, so the guard releases text as soon as it can no longer become part of a match: only a tail that is
a prefix of some pattern (a partial match, e.g. "you are stu") is held back until the next tokens settle it, and
a harmless opening word of such a tail ("I", "You", "The") goes out at once while the rest is checked from it. A
second line catches paraphrased methods: a sentence that names a means of self-harm is held until it ends and is
cut if it also names dying or "ending it". On a hit the rest of the reply is dropped and a fixed, safe sentence
ends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

_HARMFUL = [
    r"\b(?:how|ways?) to (?:kill|hang|hurt|harm|cut) (?:yourself|urself)\b",
    r"\b(?:you should|you could|try to|go ahead and|just) (?:kill|hurt|harm|cut|hang|end) (?:yourself|your life|it all)\b",
    r"\b(?:lethal|fatal) (?:dose|amount)\b",
    r"\boverdos(?:e|ing) on\b",
    r"\b(?:cut|slit) (?:your|ur) (?:wrists?|arms?|veins?)\b",
    r"\b(?:the best|an easy|a painless|a quick) way to (?:die|end (?:your|it)|kill)\b",
    r"\bhow (?:many|much) (?:pills|tablets)\b.{0,40}\b(?:die|kill|fatal|lethal)\b",
]
# Hostility is said to the user, not reported or denied: "you feel like you are worthless" and "it's not that you
# are worthless" are what supporters write (ESConv), as are "it will go away" and "you deserve it" (a treat).
_REPORTED = r"(?<!\b(?:not that|feel(?:s|ing)? like|feel(?:s|ing)?|think(?:ing)?|believe|thought|say(?:s|ing)?|said|told you|mean that|if)\s+)"
_HOSTILE = [
    _REPORTED
    + r"\byou(?:'re| are) (?:an? )?(?:stupid|idiot|moron|pathetic|worthless|useless|loser|dumb|an idiot|a loser|a moron)\b",
    r"\b(?:shut up|get lost|nobody cares about you|no one cares about you)\b",
    r"(?<=^|[.!?]\s*)(?:just |now )?go away\b",  # said to the user: a sentence of its own
    r"\b(?:i hate you|you deserve (?:to suffer|to be (?:alone|hurt|miserable)|this pain|all (?:the|this) pain))\b",
    r"\b(?:fuck (?:you|off)|screw you|piss off)\b",
]
# Paraphrased contempt said to the user (the same "reported" exemption: "you feel like a burden" is a supporter's).
_HOSTILE += [
    _REPORTED
    + r"\b(?:the world|everyone|everybody|your family|your friends|they) would be (?:better off|happier) without you\b",
    _REPORTED
    + r"\b(?:nobody|no one|no-one) would (?:even )?(?:notice|miss you|care) if you (?:were gone|disappeared|died|left)\b",
    _REPORTED + r"\b(?:nobody|no one|no-one) would (?:even )?miss you\b",
    _REPORTED
    + r"\byou(?:'re| are) (?:just )?(?:a waste of (?:space|air|oxygen|time)|a burden to (?:everyone|everybody|us|them))\b",
    # "What is wrong with you?" to someone who just said they are grieving (seen from the embedded model, session 21);
    # asking about it ("people keep asking what's wrong with you") is not contempt.
    _REPORTED + r"(?<!\b(?:ask(?:s|ed|ing)?|wonder(?:s|ed|ing)?|know|tell (?:me|us)|explain)\s+)"
    r"\bwhat(?:'s| is| the (?:hell|heck|fuck) is)? wrong with you\b",
]
_HARMFUL_RE = regex.compile("|".join(_HARMFUL), regex.I)
_HOSTILE_RE = regex.compile("|".join(_HOSTILE), regex.I)

# The second line, for paraphrases of methods the patterns above do not spell out: one sentence that names a means
# of self-harm *and* an outcome of dying or "ending it" ("Taking a whole bottle of your sleeping tablets would make
# sure you never wake up"). A sentence that names a means is held until it ends, then checked whole.
_MEANS_RE = regex.compile(
    r"\b(?:pills?|tablets?|painkillers?|paracetamol|acetaminophen|tylenol|aspirin|ibuprofen|insulin|antifreeze|bleach|"
    r"poison\w*|overdos\w*|rope|noose|banister|razors?|blades?|knife|knives|guns?|pistol|bullets?|bridge|cliff|ledge|"
    r"rooftop|train tracks|in front of (?:a|the) (?:train|bus|truck|car)|car running|exhaust|carbon monoxide|"
    r"pockets with stones|into the (?:lake|river|sea|ocean)|off (?:a|the|that) (?:building|roof|bridge|cliff|balcony))\b",
    regex.I,
)
_OUTCOME_RE = regex.compile(
    r"(?:\b(?:never|not|won't|wouldn't|don't) wake up|\bdie\b|\bdead\b|\bdeath\b|\bkill\b|\bbe over\b|\bover by\b|"
    r"\bend (?:the pain|it all|everything|your life|it)\b|\ball end\b|\bstop (?:everything|the suffering|the pain)\b|"
    r"\bsuffering stop\b|\bslip away\b|\basleep forever\b|\bfor good\b|\bpermanently\b|\bfinal\b|\buse it\b|"
    r"\bdo it\b|\bdo the job\b|\bwalk into\b)",
    regex.I,
)
_SENTENCE_END_RE = regex.compile(r"[.!?](?=\s|$)|\n")
_LAST_SENTENCE_END_RE = regex.compile(r"(?r)[.!?](?=\s|$)|\n")  # searched backwards: the last end before a point


def _frame(sentence: str) -> bool:
    return _MEANS_RE.search(sentence) is not None and _OUTCOME_RE.search(sentence) is not None


REPLACEMENT = {
    "harmful": " I can't help with that. If you are thinking about hurting yourself, please reach out to someone you "
    "trust or a crisis line right now — you don't have to go through this alone.",
    "hostile": " I'm sorry — that came out wrong. I'm here to listen, not to judge you.",
}


@dataclass(frozen=True, slots=True)
class GuardHit:
    kind: str  # "harmful" | "hostile"
    replacement: str


# Words that are harmless alone but begin a pattern ("I" → "I hate you", "You" → "you're stupid", "The" → "the best
# way to die"). Replies start with them all the time, so holding them would hold the first word of most replies for
# a token or two: such a word is released at once and the pattern it may begin is still checked from its start; if
# it completes, the stream is cut there — the user has seen that one word, never what followed.
_OPENERS = (
    "i",
    "i'm",
    "you",
    "you're",
    "your",
    "the",
    "they",
    "it",
    "a",
    "an",
    "no",
    "nobody",
    "everyone",
    "everybody",
    "how",
    "just",
    "now",
    "go",
    "there",
)
_WORD_RE = regex.compile(r"[\w']+")


def _opener_prefix(word: str) -> bool:
    w = word.lower().replace("\u2019", "'")
    return any(o.startswith(w) for o in _OPENERS)


@dataclass(slots=True)
class OutputGuard:
    text: str = ""
    released: int = 0  # characters of `text` already handed out
    hit: GuardHit | None = field(default=None)
    pending: int | None = None  # where a pattern may still be completing over an opener already released

    def _sentence_start(self, pos: int) -> int:
        """Where the sentence holding position `pos` begins (a backward search: it reads back to the last sentence end
        only, not the whole reply on every token)."""
        m = _LAST_SENTENCE_END_RE.search(self.text, 0, pos)
        return m.end() if m else 0

    @property
    def _origin(self) -> int:
        """Where a match may begin: unreleased text, or an opener released while its pattern was still open."""
        return self.released if self.pending is None else min(self.pending, self.released)

    def _check(self, final: bool = False) -> GuardHit | None:
        # A match cannot begin in released text other than a pending opener: the rest was released because no
        # pattern could still start there.
        for kind, rx in (("harmful", _HARMFUL_RE), ("hostile", _HOSTILE_RE)):
            if rx.search(self.text, self._origin):
                return GuardHit(kind, REPLACEMENT[kind])
        # The frame, on every sentence that ended in the unreleased text (and the last one when the stream ends).
        start = self._sentence_start(self.released)
        for m in _SENTENCE_END_RE.finditer(self.text, self.released):
            if _frame(self.text[start : m.end()]):
                return GuardHit("harmful", REPLACEMENT["harmful"])
            start = m.end()
        if final and _frame(self.text[start:]):
            return GuardHit("harmful", REPLACEMENT["harmful"])
        return None

    def feed(self, delta: str) -> str:
        """Add model output; returns the text now safe to send (possibly empty). After a hit, returns "" and
        `hit` says what happened; the caller sends `hit.replacement` and stops the stream."""
        if self.hit is not None:
            return ""
        self.text += delta
        self.hit = self._check()
        if self.hit is not None:
            return ""
        # Everything before the earliest place a pattern could still be starting is settled: release it.
        cut, origin, pending = len(self.text), self._origin, None
        for rx in (_HARMFUL_RE, _HOSTILE_RE):
            m = rx.search(self.text, origin, partial=True)
            if m is None or not m.partial:
                continue
            start = m.start()
            word = _WORD_RE.match(self.text, start)
            if word is not None and _opener_prefix(word.group(0)):  # release the opener, keep checking from it
                pending = start if pending is None else min(pending, start)
                cut = min(cut, max(word.end(), self.released))
            else:
                cut = min(cut, max(start, self.released))
        self.pending = pending
        # An unfinished sentence that names a means waits for its end (the frame is checked on whole sentences).
        open_from = self._sentence_start(len(self.text))
        if _SENTENCE_END_RE.search(self.text, open_from) is None and _MEANS_RE.search(self.text, open_from) is not None:
            cut = min(cut, max(open_from, self.released))
        if cut <= self.released:
            return ""
        out, self.released = self.text[self.released : cut], cut
        return out

    def finish(self) -> str:
        """The held-back tail, once the stream has ended (checked with everything before it)."""
        if self.hit is not None:
            return ""
        self.hit = self._check(final=True)
        if self.hit is not None:
            return ""
        out, self.released = self.text[self.released :], len(self.text)
        return out
