"""What a conversation emits, as typed values. These dataclasses are the one declaration of the server's wire events:
server/protocol.py derives the pydantic models, the wire union and protocol.schema.json from them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, get_args

from perception import Modality
from persona import ControlSignals, PersonaView, RuleFiring

PROTOCOL_VERSION = "1"


# --- payloads ---------------------------------------------------------------------------------------------------------

Level = Literal["none", "caution", "crisis"]
Sampling = Mapping[
    str, int | float
]  # temperature, max_tokens, presence_penalty and the vLLM extras of prompts/sampling.yaml


@dataclass(frozen=True, slots=True)
class Usage:
    """The LLM's token counts for the reply (None: not reported, e.g. the fixed crisis reply)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds per stage of the turn (None: the stage did not happen)."""

    perception: float | None
    fusion: float | None
    policy: float | None
    overhead_before_llm: float | None  # turn start -> the LLM request
    llm_first_token: float | None  # the request -> the model's first token
    first_delta: float | None  # the request -> the first text the user saw
    llm_total: float | None
    total: float | None
    first_audio: float | None = None  # spoken replies: turn start -> the first audio sent
    tts_sentence_p50: float | None = None  # spoken replies: synthesis time of a sentence


@dataclass(frozen=True, slots=True)
class SafetyReading:
    """The explanation's safety part: what the layer read in the message and the mode the reply was written in."""

    level: Level
    score: float
    rule: str | None
    category: str | None
    read_with_turn: int | None
    mode: str  # the controls' safety_mode
    safe_mode: Mapping[str, object]  # persona.safemode.SafeMode, as the policy's audit trail shows it


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why the reply is what it is: what was perceived, how fusion weighed it, the persona, the rules that fired and
    the controls and sampling they produced, the safety reading, and a sentence that says it plainly."""

    perceived: Mapping[Modality, Mapping[str, float]]  # modality -> its top 3 emotions
    gates: Mapping[Modality, float]
    present: tuple[str, ...]
    persona: PersonaView
    rules_fired: tuple[str, ...]
    why: tuple[str, ...]
    controls: ControlSignals
    sampling: Sampling
    safety: SafetyReading
    summary: str
    tools_called: tuple[str, ...] = ()  # the functions the model called in this reply, by name


# --- events -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """The session is open (new or resumed): its id, profile, stored history and carried-over persona."""

    type: ClassVar[str] = "session.started"
    session_id: str
    profile: str
    resumed: bool
    history: tuple[Mapping[str, str], ...] = ()
    persona: PersonaView | None = None  # carried over (resumed session, or a returning user_id)
    protocol: str = PROTOCOL_VERSION
    voice_reply: bool = False  # replies are spoken too (asked for in session.start, and the server has a voice)
    user_id: str | None = None  # the user the session is stored under (null: anonymous)
    resume_token: str | None = None  # with auth on: what a publishable key must send to resume this session


@dataclass(frozen=True, slots=True)
class PerceptionEvent:
    """One modality's reading of the user: 7 shared emotions, confidence, valence/arousal, model evidence."""

    type: ClassVar[str] = "perception"
    modality: Literal["text", "voice", "face"]
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
    """The persona after this turn, with the fusion gate weight of each modality."""

    type: ClassVar[str] = "persona"
    state: PersonaView
    gates: Mapping[str, float]
    present: tuple[str, ...]
    fusion_model: str


@dataclass(frozen=True, slots=True)
class ControlsEvent:
    """The control signals the policy chose for this reply, the sampling, and the rules that fired (the audit trail)."""

    type: ClassVar[str] = "controls"
    controls: ControlSignals
    sampling: Sampling
    rules_fired: tuple[RuleFiring, ...]
    overridden: Mapping[str, object]
    rejected_overrides: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ResponseDelta:
    """A piece of the reply's text, in order."""

    type: ClassVar[str] = "response.delta"
    response_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ResponseToolCall:
    """The model called one of the tools the client offered: run it and answer with its output (`tool.result` on the
    WebSocket, a `tool` message on the OpenAI route); the reply then continues under the same controls. Sent before
    the response.done whose finish_reason is "tool_calls"."""

    type: ClassVar[str] = "response.tool_call"
    response_id: str
    call_id: str
    name: str
    arguments: str  # a JSON object, as text


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """The reply is complete: its text, why it ended, the model that answered, usage, timings, the explanation."""

    type: ClassVar[str] = "response.done"
    response_id: str
    text: str
    finish_reason: str | None
    model: str  # the model that answered (the LoRA adapter's name, the base model's, or fixed:crisis_reply)
    usage: Usage
    timings_ms: Timings
    explanation: Explanation
    input_truncated: bool = False  # the message did not fit the model's context: it was answered from its beginning


@dataclass(frozen=True, slots=True)
class ResponseAudioStart:
    """The reply will also be spoken (session.start voice_reply): the audio format of the response.audio events."""

    type: ClassVar[str] = "response.audio.start"
    response_id: str
    sample_rate: int
    voice: str
    format: Literal["pcm16le"] = "pcm16le"
    channels: int = 1


@dataclass(frozen=True, slots=True)
class ResponseAudio:
    """One spoken sentence of the reply: base64 PCM16 audio, its text, and where it sits in the reply's audio."""

    type: ClassVar[str] = "response.audio"
    response_id: str
    index: int
    text: str
    start_ms: float
    duration_ms: float
    audio: str


@dataclass(frozen=True, slots=True)
class ResponseAudioDone:
    """Every sentence of the reply has been spoken (sent); response.done follows."""

    type: ClassVar[str] = "response.audio.done"
    response_id: str
    duration_ms: float
    sentences: int


@dataclass(frozen=True, slots=True)
class ResponseAudioTruncated:
    """After response.audio.played {interrupted}: history now keeps only what the user heard (`text`), marked
    interrupted, and the model is told so on the next turn."""

    type: ClassVar[str] = "response.audio.truncated"
    response_id: str
    ms: float
    text: str


@dataclass(frozen=True, slots=True)
class ResponseCancelled:
    """The reply was cancelled (response.cancel); `text` is what had been sent."""

    type: ClassVar[str] = "response.cancelled"
    response_id: str
    text: str  # what had been sent before the cancel; stored in history marked as cut short


@dataclass(frozen=True, slots=True)
class ResponseInterrupted:
    """The user started speaking over the reply (barge-in); `text` is what had been sent."""

    type: ClassVar[str] = "response.interrupted"
    response_id: str
    text: str  # what had been sent when the user started speaking; stored in history marked as interrupted


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The voice activity detector heard the user start an utterance."""

    type: ClassVar[str] = "speech.started"
    utterance_id: int


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """Speech-to-text of an utterance: interim while it goes on, final when it ends."""

    type: ClassVar[str] = "transcript"
    utterance_id: int
    text: str
    final: bool
    duration_s: float | None = None
    latency_ms: float | None = None
    model: str | None = None
    backchannel: bool = False  # an acknowledgement ("mm-hmm", "yeah") said while the reply played: not a turn


@dataclass(frozen=True, slots=True)
class SafetyEvent:
    """For the operator: the safety layer acted (crisis reply, caution prompt, or a blocked model output)."""

    type: ClassVar[str] = "safety"
    risk: bool
    level: Literal["none", "caution", "crisis"]  # none: safe mode released
    score: float
    rule: str | None  # the explicit phrase that matched, if any
    action: (
        str  # crisis_reply (fixed text, no LLM), caution_prompt, output_blocked, safe_mode_entered, safe_mode_released,
    )
    # language_unsupported (the message is in a language the phrase rules do not cover; screened by the learned score)
    model: str
    language: str | None = None  # the message's language as identified (ISO 639-1), when it was identified
    language_screened: bool = True  # false: no explicit-phrase rules for that language
    category: str | None = None  # the warning-sign category read by meaning (training/warning_signs/categories.yaml)
    read_with_turn: int | None = None  # the level came from reading the message joined to this earlier user turn


@dataclass(frozen=True, slots=True)
class ControlsUpdated:
    """The session's control overrides after a controls.override, with what was refused and why."""

    type: ClassVar[str] = "controls.updated"
    overrides: Mapping[str, object]
    rejected: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something went wrong with a client event or a turn; `code` says what, `retryable` whether to try again."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool = False


Event = (
    SessionStarted
    | PerceptionEvent
    | FaceAbsent
    | PersonaEvent
    | ControlsEvent
    | ResponseDelta
    | ResponseToolCall
    | ResponseDone
    | ResponseAudioStart
    | ResponseAudio
    | ResponseAudioDone
    | ResponseAudioTruncated
    | ResponseCancelled
    | ResponseInterrupted
    | SpeechStarted
    | TranscriptEvent
    | SafetyEvent
    | ControlsUpdated
    | ErrorEvent
)
EVENTS: tuple[type[Event], ...] = get_args(Event)  # each event class, in the union's order
Emit = Callable[[Event], Awaitable[None]]  # how a conversation hands an event to its connection
