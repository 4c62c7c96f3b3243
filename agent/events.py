"""What a conversation emits, as typed values; server/ turns them into wire events."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class SessionStarted:
    type: ClassVar[str] = "session.started"
    session_id: str
    profile: str
    resumed: bool
    history: tuple[Mapping[str, str], ...] = ()
    persona: Mapping[str, object] | None = None  # carried over (resumed session, or a returning user_id)


@dataclass(frozen=True, slots=True)
class PerceptionEvent:
    type: ClassVar[str] = "perception"
    modality: str
    emotions: Mapping[str, float]
    top: str
    confidence: float
    valence: float
    arousal: float
    model: str
    latency_ms: float
    evidence: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FaceAbsent:
    """A camera frame was read and no face was found in it (the previous face reading stays until it expires)."""
    type: ClassVar[str] = "face.absent"
    latency_ms: float
    model: str


@dataclass(frozen=True, slots=True)
class PersonaEvent:
    type: ClassVar[str] = "persona"
    state: Mapping[str, object]
    gates: Mapping[str, float]
    present: tuple[str, ...]
    fusion_model: str


@dataclass(frozen=True, slots=True)
class ControlsEvent:
    type: ClassVar[str] = "controls"
    controls: Mapping[str, object]
    sampling: Mapping[str, object]
    rules_fired: tuple[Mapping[str, object], ...]
    overridden: Mapping[str, object]
    rejected_overrides: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ResponseDelta:
    type: ClassVar[str] = "response.delta"
    response_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    type: ClassVar[str] = "response.done"
    response_id: str
    text: str
    finish_reason: str | None
    model: str  # the model that answered (the LoRA adapter's name, the base model's, or fixed:crisis_reply)
    usage: Mapping[str, int | None]
    timings_ms: Mapping[str, float | None]
    explanation: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ResponseCancelled:
    type: ClassVar[str] = "response.cancelled"
    response_id: str
    text: str  # what had been sent before the cancel; stored in history marked as cut short


@dataclass(frozen=True, slots=True)
class ResponseInterrupted:
    type: ClassVar[str] = "response.interrupted"
    response_id: str
    text: str  # what had been sent when the user started speaking; stored in history marked as interrupted


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    type: ClassVar[str] = "speech.started"
    utterance_id: int


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    type: ClassVar[str] = "transcript"
    utterance_id: int
    text: str
    final: bool
    duration_s: float | None = None
    latency_ms: float | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class SafetyEvent:
    type: ClassVar[str] = "safety"
    risk: bool
    level: str  # caution | crisis
    score: float
    rule: str | None  # the explicit phrase that matched, if any
    action: str  # what the agent did: "crisis_reply" (fixed text, no LLM) or "caution_prompt"
    model: str


@dataclass(frozen=True, slots=True)
class ControlsUpdated:
    type: ClassVar[str] = "controls.updated"
    overrides: Mapping[str, object]
    rejected: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool = False


Event = (
    SessionStarted | PerceptionEvent | PersonaEvent | ControlsEvent | ResponseDelta | ResponseDone
    | ResponseCancelled | ResponseInterrupted | SpeechStarted | TranscriptEvent | SafetyEvent | ControlsUpdated | ErrorEvent
)
