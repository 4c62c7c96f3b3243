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
    r"|\b(any|give\s+me|need|want|get|like|looking\s+for|have\s+any)\s+(some\s+)?(advice|tips|ideas|suggestions?|"
    r"recommendations?)\b"
    r"|\bwhat\s+would\s+you\s+(do|suggest|recommend)\b"
    r"|\b(do|would)\s+(you|u)\s+(think|suggest|recommend)\s+(that\s+)?(i|we)\s+(should|could|do)\b"
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
    r"^\s*(hi|hello|hey|hiya|good\s+(morning|afternoon|evening)|how\s+are\s+you|how's\s+it\s+going|how\s+goes\s+it|"
    r"what's\s+up|"
    r"nice\s+to\s+meet\s+you|thanks?|thank\s+you)\b",
    re.IGNORECASE,
)
# A "?" that asks nothing: a tag that checks the listener is with them ("..., you know?", "..., right?") or the
# pleasantry handed back ("how are you?", "and you?"). Neither makes the message a question to answer; a short
# message around a handed-back pleasantry ("I'm good, and you?") is a greeting.
_TAG = re.compile(
    r"\b(you\s+know(\s+what\s+i\s+mean)?|know\s+what\s+i\s+mean)\s*\?+|,\s*(right|ok(ay)?|yeah|no)\s*\?+"
    r"|(?<!\bthat\s)(?<!\bit\s)(?<!\bthis\s)(?<!\bis\s)(?<!\bam\s)(?<!^)\b(right|yeah)\s*\?+\s*$",
    re.IGNORECASE,
)
_HANDED_BACK = re.compile(
    r"\b(how\s+(are|r)\s+((you|u)\s+)?doing(\s+today)?(\s+tonight)?|how\s+(are|r)\s+(you|u)(\s+today)?(\s+tonight)?|"
    r"how\s+about\s+(you|u)|what\s+about\s+(you|u)|and\s+(you|u)|how\s+(is|was)\s+your\s+(day|evening|night|morning|weekend)|how\s+(are\s+)?things(\s+with\s+you)?|"
    r"how's\s+it\s+going|how\s+about\s+yourself|and\s+yours(elf)?|are\s+you\s+still\s+there|still\s+there)\s*\?+"
    r"|(^|[.!,]\s*|\b(good|well|fine|ok(ay)?|great|bad)\s+)(and\s+)?(you|u|yourself)\s*\?+",
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


# Thanks or goodbye as the message's last sentence ("Will do, thanks again!", "... - thank you very much."): the
# message closes the exchange, whatever came before it.
_CLOSES = re.compile(
    r"^\W*(ok(ay)?\W+|will\s+do\W+|great\W+|yes\W+)?(thanks?|thank\s+you|bye|goodbye|good\s*night|take\s+care|"
    r"talk\s+(to\s+you\s+)?(later|soon)|have\s+a\s+(good|great|nice|wonderful|lovely)\s+\w+)\b(?!.*\bbut\b)"
    r"|\b(thanks?(\s+again)?|thank\s+you(\s+(so|very)\s+much)?(\s+again)?|bye|goodbye|take\s+care)\W*$",
    re.IGNORECASE,
)
# A question about the listener themselves ("Have you had a similar experience?", "How do you relax?", "Are you a
# real person?", "How did your mom do?"): answered with something of our own or plain information, not a suggestion.
# Asking for help, an opinion or a recommendation ("can you help me?", "do you think ...?") is not about us.
_ABOUT_US = re.compile(
    r"\b(have|has|had|did|do|don't|dont|didn't|didnt|are|aren't|arent|were|was|would|will|could|can)\s+(you|u)\b(?!\s+(please|help|tell|suggest|recommend|"
    r"think|give|send|explain|show|check|let|find|know\s+(if|whether|where|how|what|when|of|any|a)))"
    r"|\b(how|what|when|where|why|which)\s+(do|did|have|would|are|were|was)\s+(you|u)\b(?!\s+(think|suggest|"
    r"recommend|mean))"
    r"|\b(you|u)\s+(do|did|feel|felt|like|been)\s*\?|\byour\s+\w+(\s+\w+)?\s+(do|doing|like|been)\s*\?"
    r"|\b(how|what|where|when)\s+(is|was|were|are)\s+your\b|\bwhat\s+(you|u)\s+(do|did)\b",
    re.IGNORECASE,
)
# how many words may follow the last "?" for the message still to end in it: "Where is my package? It was due on
# Monday." asks; "mine? he never said which friends he was going to see, he also didn't ..." tells
_AFTER_ASK = 8
# A question that vents rather than asks ("Why are people so mean?", "How could he do this to me?", "What's the point
# of trying?"): it tells how it hurts and wants to be heard, so the message reads as a statement.
_VENT = re.compile(
    r"\bwhy\s+(are|is|do|does|did|would|can't|won't|must)\s+(people|he|she|they|everyone|everybody|life|my\s+\w+)"
    r"\b.*\b(so|always|never|keep|mean|cruel|hard|unfair|hurt|happen)\w*"
    r"|\bwhy\s+(me|does\s+this\s+always|do\s+i\s+always|does\s+it\s+always)\b|\bhow\s+could\s+(he|she|they|people|anyone|someone|"
    r"my\s+\w+)\b|\bwhat'?s\s+the\s+(point|use)\b|\bwonder(ing)?\s+why\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _last_sentence(text: str) -> str:
    parts = [p for p in _SENTENCE.split(text.strip()) if p.strip()]
    return parts[-1] if parts else ""


def _final_question(asking: str) -> str | None:
    """The question the message ends with: its last sentence that ends in "?", when no more than a few words follow."""
    if "?" not in asking:
        return None
    head, _, tail = asking.rpartition("?")
    if len(tail.split()) > _AFTER_ASK:
        return None
    return _last_sentence(head + "?")


# Asking whether we can help, before saying with what ("Is this something you can help me with?", "I'm looking for
# some support", "is there anything you can do?"): the direct answer is yes, and an invitation to tell more.
_HELP = re.compile(
    r"\b(can|could|would|will)\s+(you|u)\s+(please\s+)?help(\s+me)?(\s+(out|please))?\s*\??\s*$"
    r"|\b(something|anything)\s+(that\s+)?(you|u)\s+(can|could)\s+(help|do)\b"
    r"|\b(can|could|may)\s+i\s+(talk|vent|speak)\s+(to|with)\s+(you|u)\b|\bneed\s+to\s+(vent|talk\s+to\s+someone)\b"
    r"|\b(looking\s+for|seeking|need|want|get|like)\s+(some\s+)?(help|support)\b(?!\s+(with|on|for)\s+(my\s+)?(order|"
    r"account|password|subscription|booking|refund))",
    re.IGNORECASE,
)


# A yes/no question that asks to be reassured ("Do you think this will be over soon?", "Is it normal to feel this
# way?", "Am I overreacting?"): reassurance answers it as directly as information does.
_REASSURE = re.compile(
    r"\b(do|don't)\s+(you|u)\s+think\b|\bis\s+(it|that|this)\s+(normal|ok(ay)?|wrong|bad|weird|strange|common|silly|"
    r"stupid|crazy|fine|possible|too\s+late)\b|\b(am|was)\s+i\s+(wrong|right|crazy|overreacting|being|too|normal|"
    r"the\s+only)\b|\bwill\s+(it|i|things|this|that|she|he|they)\s+(ever\s+)?(get|be|work|go|stop|change)\b"
    r"|\b(would|could)\s+(it|that|this)\s+(be|work|help)\b",
    re.IGNORECASE,
)


def asks_reassurance(text: str) -> bool:
    """Does the message end in a yes/no question that asks to be reassured (_REASSURE)?"""
    asked = _final_question(_HANDED_BACK.sub(" ", _TAG.sub(" ", text.strip())))
    return asked is not None and _REASSURE.search(asked) is not None


def asks_for_help(text: str) -> bool:
    """Does the message ask for help without yet asking a question about anything in particular (_HELP)?"""
    return _HELP.search(text) is not None and not _ADVICE.search(text)


def asks_about_us(text: str) -> bool:
    """Does the message end in a question about the listener themselves (_ABOUT_US)? A short one needs no "?"
    ("Where are you living")."""
    t = text.strip()
    asked = _final_question(_HANDED_BACK.sub(" ", _TAG.sub(" ", t)))
    if asked is None and "?" not in t and len(t.split()) <= 12 and _QUESTION_START.search(t):
        asked = t
    return asked is not None and _ABOUT_US.search(asked) is not None


def tells_news(text: str) -> bool:
    """Does the message tell of something that happened (persona/message.py's _NEWS)?"""
    return _NEWS.search(text) is not None


def message_kind(text: str) -> MessageKind:
    """What the user is doing with this message, by the first pattern that matches, in this order."""
    t = text.strip()
    words = len(t.split())
    last = _last_sentence(t)
    ends_closing = _CLOSES.search(last) is not None and "?" not in last
    if _ADVICE.search(t) and not (
        ends_closing and "?" not in t
    ):  # "thanks, you gave me some ideas" closes; it asks for none
        return "advice_request"
    untagged = _TAG.sub(" ", t)
    asking = _HANDED_BACK.sub(" ", untagged).strip()  # the message less its tags and handed-back pleasantries
    if _REQUEST.search(t) and (_ASK.search(t) or "?" in asking):
        return "request"
    if (
        (_GREETING.search(t) and words <= 8)
        or _CLOSING.search(t)
        or ends_closing
        or (asking != untagged.strip() and len(asking.split()) <= 8)
    ):
        return "greeting"
    if (asked := _final_question(asking)) is not None and _VENT.search(asked):
        return "statement"
    if asked is not None or (_QUESTION_START.search(asking) and words <= 12):
        return "question"
    return "statement"


@dataclass(frozen=True, slots=True)
class Moment:
    """This message, next to the persona: its kind, its own emotion and valence (the fused reading of this turn
    alone; the persona is the conversation's running estimate), whether it is good news (it tells of something that
    happened and reads as mostly positive on the text model's 28 GoEmotions labels: the fused 7-label reading often
    calls good news "surprise" with some sadness), the turn number, and the strategy of the previous reply (None on
    the first), whether it ends in a question about the listener themselves (`about_us`), whether it asks for help
    before saying with what (`help`), and whether it ends in a yes/no question that asks to be reassured
    (`reassurance`)."""

    kind: MessageKind
    emotion: str
    valence: float
    confidence: float
    turn: int
    previous_strategy: str | None = None
    good_news: bool = False
    about_us: bool = False
    help: bool = False
    reassurance: bool = False

    @staticmethod
    def read(
        text: str,
        distribution: np.ndarray,
        turn: int,
        previous_strategy: str | None = None,
        confidence: float = 1.0,
        positive: bool = False,
    ) -> Moment:
        """From the message's words and its fused emotion distribution over LABELS. `positive`: the message reads
        as mostly positive (perception/safety.py positive_message on its 28 labels); with news told, it is good news."""
        dist = np.asarray(distribution, np.float32)
        return Moment(
            kind=message_kind(text),
            emotion=LABELS[int(np.argmax(dist))],
            valence=round(valence_arousal(dist)[0], 4),
            confidence=round(float(confidence), 4),
            turn=turn,
            previous_strategy=previous_strategy,
            good_news=positive and tells_news(text),
            about_us=asks_about_us(text),
            help=asks_for_help(text),
            reassurance=asks_reassurance(text),
        )
