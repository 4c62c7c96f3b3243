"""The message in front of the policy: what kind of message it is (asking for advice, asking a question, a concrete
request, a greeting, or sharing something) and how this message itself reads, next to the conversation's running
persona. A persona that has been anxious for five turns should not make the policy answer "I passed!" with
reassurance, nor answer "what could I do tonight?" with a reflection.

The kind is read from the words by a few readable patterns (no model): what a person would call a request for advice
or a direct question is unambiguous in most messages, and an operator can read and change the patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from perception import LABELS
from perception.labels import valence_arousal

MessageKind = Literal["advice_request", "question", "request", "greeting", "statement"]
MESSAGE_KINDS: tuple[MessageKind, ...] = ("advice_request", "question", "request", "greeting", "statement")

_ADVICE = re.compile(
    r"\b(what|how)\s+(should|could|can|do|would|might)\s+(i|we)\b"
    r"|\bwhat\s+(can|could|should|would)\s+(i|we)\s+do\b"
    r"|\b(any|some|give me|need|want|have)\s+(advice|tips|ideas|suggestions?|recommendations?)\b"
    r"|\bwhat\s+would\s+you\s+(do|suggest|recommend)\b"
    r"|\b(should|shall)\s+i\b"
    r"|\bhow\s+(do|can|could)\s+i\s+(stop|deal|cope|handle|get|make|manage|calm|relax|sleep|find|tell|talk)\b"
    r"|\bhelp\s+me\s+(to\s+)?(figure|decide|find|plan|calm|deal|cope|choose|work)\b"
    r"|\b(is there|are there)\s+(anything|something|a way|ways)\s+(i|that i)\b"
    r"|\b(can|could)\s+you\s+(suggest|recommend)\b",
    re.IGNORECASE,
)
# A concrete ask about something transactional: an order, a refund, an account, a booking.
_REQUEST = re.compile(
    r"\b(refund|replacement|replace|return|exchange|cancel|cancellation|money back|order|invoice|charged|charge|"
    r"delivery|shipping|tracking|account|password|subscription|booking|reservation|warranty|receipt|package|parcel)\b",
    re.IGNORECASE,
)
_ASK = re.compile(
    r"\b(i\s+want|i'd\s+like|i\s+would\s+like|i\s+need|please|can\s+you|could\s+you|will\s+you|"
    r"i\s+demand|give\s+me|send\s+me)\b",
    re.IGNORECASE,
)
# Something happened: news, told as an event ("I passed", "we got the keys", "my team won", "guess what"). With a
# reading that is mostly positive it is good news; without the event, a positive message is more often agreement or
# thanks ("that sounds good, I'll try it"), which is not news to celebrate. A plan is not an event: "I'm going to try
# that", "I'm going to log off now" (ESConv's closings read as good news while "going" counted).
_NEWS = re.compile(
    r"\b(i|we|i've|we've|i'm|we're)\s+(just\s+|finally\s+|actually\s+)?(got|passed|finished|won|made|landed|bought|"
    r"graduated|completed|started|found|received|earned|booked|signed|sold|moved|became|reached|hit|beat|aced|nailed)\b|"
    r"\b(won|engaged|married|promoted|promotion|pregnant|accepted|hired|graduated|finished|passed)\b|"
    r"\bguess\s+what\b|\bgood\s+news\b|\bit\s+worked\b|\bworks\s+(perfectly|great)\b|\barrived\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^\s*(who|what|when|where|why|how|which|is|are|was|were|do|does|did|can|could|will|would|should|shall|may|have|has)"
    r"\b",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|hiya|good\s+(morning|afternoon|evening)|how\s+are\s+you|how's\s+it\s+going|what's\s+up|"
    r"nice\s+to\s+meet\s+you|thanks?|thank\s+you)\b",
    re.IGNORECASE,
)
# A "?" that asks nothing: a tag that checks the listener is with them ("..., you know?", "..., right?") or the
# pleasantry handed back ("how are you?", "and you?"). Neither makes the message a question to answer; a short
# message around a handed-back pleasantry ("I'm good, and you?") is a greeting.
_TAG = re.compile(
    r"\b(you\s+know(\s+what\s+i\s+mean)?|know\s+what\s+i\s+mean)\s*\?+|,\s*(right|ok(ay)?|yeah|no)\s*\?+",
    re.IGNORECASE,
)
_HANDED_BACK = re.compile(
    r"\b(how\s+(are|r)\s+(you|u)(\s+doing)?(\s+today)?(\s+tonight)?|how\s+about\s+(you|u)|what\s+about\s+(you|u)|"
    r"and\s+(you|u)|how\s+(is|was)\s+your\s+(day|evening|night|morning|weekend)|how\s+(are\s+)?things(\s+with\s+you)?|"
    r"how's\s+it\s+going)\s*\?+",
    re.IGNORECASE,
)
# Thanks and goodbye at the end of a conversation ("Thank you so much for your advice. I'm going to log off now."):
# a pleasantry, however long.
_CLOSING = re.compile(
    r"\b(thanks?|thank\s+you|appreciate)\b.*\b(bye|goodbye|good\s*night|log\s*(off|out)|sign\s+off|take\s+care|"
    r"talk\s+(to\s+you\s+)?(later|soon)|have\s+a\s+(good|great|nice|wonderful)\s+(day|night|evening|weekend))\b"
    r"|\b(bye|goodbye|good\s*night|take\s+care)\b.*\b(thanks?|thank\s+you)\b",
    re.IGNORECASE | re.DOTALL,
)


def tells_news(text: str) -> bool:
    """Does the message tell of something that happened (persona/message.py's _NEWS)?"""
    return _NEWS.search(text) is not None


def message_kind(text: str) -> MessageKind:
    """What the user is doing with this message, by the first pattern that matches, in this order."""
    t = text.strip()
    words = len(t.split())
    if _ADVICE.search(t):
        return "advice_request"
    untagged = _TAG.sub(" ", t)
    asking = _HANDED_BACK.sub(" ", untagged).strip()  # the message less its tags and handed-back pleasantries
    if _REQUEST.search(t) and (_ASK.search(t) or "?" in asking):
        return "request"
    if (
        (_GREETING.search(t) and words <= 8)
        or _CLOSING.search(t)
        or (asking != untagged.strip() and len(asking.split()) <= 6)
    ):
        return "greeting"
    if "?" in asking or (_QUESTION_START.search(asking) and words <= 12):
        return "question"
    return "statement"


@dataclass(frozen=True, slots=True)
class Moment:
    """This message, next to the persona: its kind, its own emotion and valence (the fused reading of this turn
    alone; the persona is the conversation's running estimate), whether it is good news (it tells of something that
    happened and reads as mostly positive on the text model's 28 GoEmotions labels: the fused 7-label reading often
    calls good news "surprise" with some sadness), the turn number, and the strategy of the previous reply (None on
    the first)."""

    kind: MessageKind
    emotion: str
    valence: float
    confidence: float
    turn: int
    previous_strategy: str | None = None
    good_news: bool = False

    @staticmethod
    def read(
        text: str,
        distribution: np.ndarray,
        turn: int,
        previous_strategy: str | None = None,
        confidence: float = 1.0,
        positive: bool = False,
    ) -> Moment:
        """`positive`: the message reads as mostly positive (perception/safety.py positive_message on its 28
        labels); with news told, it is good news."""
        """From the message's words and its fused emotion distribution over LABELS."""
        dist = np.asarray(distribution, np.float32)
        return Moment(
            kind=message_kind(text),
            emotion=LABELS[int(np.argmax(dist))],
            valence=round(valence_arousal(dist)[0], 4),
            confidence=round(float(confidence), 4),
            turn=turn,
            previous_strategy=previous_strategy,
            good_news=positive and tells_news(text),
        )
