"""The output guard: what the model says is checked before the user sees it.

Two things a reply must never do, whatever the user asked for and whatever a small model improvises:
  - give self-harm or suicide methods, or encourage them;
  - turn hostility back on the user (insults, contempt, telling them to shut up or go away).

Replies stream, so the guard releases text as soon as it can no longer become part of a match: only a tail that is
a prefix of some pattern (a partial match, e.g. "you are stu") is held back until the next tokens settle it. On a
hit the rest of the reply is dropped and a fixed, safe sentence ends it.
"""
from __future__ import annotations

import regex
from dataclasses import dataclass, field

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
    _REPORTED + r"\byou(?:'re| are) (?:an? )?(?:stupid|idiot|moron|pathetic|worthless|useless|loser|dumb|an idiot|a loser|a moron)\b",
    r"\b(?:shut up|get lost|nobody cares about you|no one cares about you)\b",
    r"(?<=^|[.!?]\s*)(?:just |now )?go away\b",  # said to the user: a sentence of its own
    r"\b(?:i hate you|you deserve (?:to suffer|to be (?:alone|hurt|miserable)|this pain|all (?:the|this) pain))\b",
    r"\b(?:fuck (?:you|off)|screw you|piss off)\b",
]
_HARMFUL_RE = regex.compile("|".join(_HARMFUL), regex.I)
_HOSTILE_RE = regex.compile("|".join(_HOSTILE), regex.I)

REPLACEMENT = {
    "harmful": " I can't help with that. If you are thinking about hurting yourself, please reach out to someone you "
               "trust or a crisis line right now — you don't have to go through this alone.",
    "hostile": " I'm sorry — that came out wrong. I'm here to listen, not to judge you.",
}


@dataclass(frozen=True, slots=True)
class GuardHit:
    kind: str  # "harmful" | "hostile"
    replacement: str


@dataclass(slots=True)
class OutputGuard:
    text: str = ""
    released: int = 0  # characters of `text` already handed out
    hit: GuardHit | None = field(default=None)

    def _check(self) -> GuardHit | None:
        # A match cannot begin in released text: that was released because no pattern could still start there.
        for kind, rx in (("harmful", _HARMFUL_RE), ("hostile", _HOSTILE_RE)):
            if rx.search(self.text, self.released):
                return GuardHit(kind, REPLACEMENT[kind])
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
        cut = len(self.text)
        for rx in (_HARMFUL_RE, _HOSTILE_RE):
            m = rx.search(self.text, self.released, partial=True)
            if m is not None and m.partial:
                cut = min(cut, m.start())
        if cut <= self.released:
            return ""
        out, self.released = self.text[self.released:cut], cut
        return out

    def finish(self) -> str:
        """The held-back tail, once the stream has ended (checked with everything before it)."""
        if self.hit is not None:
            return ""
        out, self.released = self.text[self.released:], len(self.text)
        return out
