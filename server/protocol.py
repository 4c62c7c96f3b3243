"""Wire protocol v1: JSON events with a `type` field over ws://HOST:PORT/v1/chat. Client events are declared here as
pydantic models; server events are the agent's event dataclasses (agent/events.py), from which the pydantic models
below are derived. `persona-agent schema` exports both as server/protocol.schema.json."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any, Literal, Union, get_args, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model, field_validator

from agent.events import EVENTS, PROTOCOL_VERSION, Event
from prompts.tools import MAX_TOOLS, Tool, ToolCall, ToolResult, ToolUse

MAX_FRAME_BYTES = 64 * 1024  # one JSON event
MAX_TEXT_CHARS = 8000  # one user message
MAX_AUDIO_FRAME_BYTES = 64_000  # 2 s of PCM16 at 16 kHz
MAX_AUDIO_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_AUDIO_UPLOAD_SECONDS = 600.0
MAX_IMAGE_BYTES = 4 * 1024 * 1024  # one camera frame or uploaded image (JPEG/PNG)
MAX_IMAGE_EVENT_BYTES = MAX_IMAGE_BYTES * 4 // 3 + 4096  # a user.image event: the image in base64 plus the envelope
MAX_WS_MESSAGE_BYTES = 8 * 1024 * 1024  # transport limit: a bigger WebSocket message closes the socket with 1009


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: bool = True
    voice: bool = False
    face: bool = False


# --- function tools (issue #45): OpenAI's shapes, for every edge -------------------------------------------------------


class FunctionSpec(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field(default="", max_length=4096)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolSpec(BaseModel):
    """OpenAI's tool: `{"type": "function", "function": {name, description, parameters}}`."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedChoice(BaseModel):
    type: Literal["function"] = "function"
    function: dict[str, str]


ToolChoice = Literal["auto", "none", "required"] | NamedChoice


def tool_use(
    tools: list[ToolSpec] | None,
    choice: ToolChoice | None,
    calls: tuple[ToolCall, ...] = (),
    results: tuple[ToolResult, ...] = (),
) -> ToolUse:
    """The tools offered and how the model may use them (ValueError when they do not fit together)."""
    offered = tuple(Tool(t.function.name, t.function.description, t.function.parameters) for t in tools or ())
    name = choice.function.get("name", "") if isinstance(choice, NamedChoice) else choice
    return ToolUse(offered, name or ("auto" if offered else "none"), calls, results)


class SessionStart(_Client):
    type: Literal["session.start"]
    profile: str | None = Field(None, max_length=64, description="agent profile id; default from settings")
    user_id: str | None = Field(None, max_length=128, description="stable id to keep a persona across sessions")
    resume: str | None = Field(None, max_length=64, description="session_id of an earlier session to continue")
    resume_token: str | None = Field(
        None,
        max_length=64,
        description="with a publishable key, resuming needs the session's resume_token from its session.started",
    )
    user_token: str | None = Field(
        None,
        max_length=1024,
        description="with a publishable key, user_id is kept only "
        "when this token (signed by your backend with its secret key) vouches for it",
    )
    consent: Consent = Field(default_factory=Consent)
    locale: str | None = Field(
        None, max_length=16, description="e.g. en-US: picks the crisis resources the safety layer gives"
    )
    voice_reply: bool = Field(
        False,
        description="speak the replies too: response.audio.start, response.audio (base64 "
        "PCM16 per sentence), response.audio.done before response.done",
    )
    tools: list[ToolSpec] | None = Field(
        None,
        max_length=MAX_TOOLS,
        description="functions the model may call (OpenAI's tool shape): a call comes as response.tool_call, "
        "and the reply continues when the client sends tool.result for every call of it",
    )
    tool_choice: ToolChoice | None = Field(
        None,
        description="auto (the default with tools; the reply taken up again may call again), none, required, or a "
        "function's name (both force one round of calls; the reply taken up again answers with their outputs)",
    )

    tool_timeout_s: float | None = Field(
        None,
        ge=1,
        le=600,
        description="how long a reply that called tools waits for every tool.result before it is given up with a "
        "tool_timeout error (default 120)",
    )


class ToolsUpdate(_Client):
    type: Literal["tools.update"]
    tools: list[ToolSpec] = Field(max_length=MAX_TOOLS, description="the functions offered from the next turn on")
    tool_choice: ToolChoice | None = None
    tool_timeout_s: float | None = Field(None, ge=1, le=600, description="as in session.start")


class ToolResultEvent(_Client):
    type: Literal["tool.result"]
    call_id: str = Field(min_length=1, max_length=128, description="response.tool_call's call_id")
    output: str = Field(max_length=MAX_TEXT_CHARS * 2, description="what the function returned, as text")


class UserText(_Client):
    type: Literal["user.text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    explain: bool = Field(False, description="attach per-word attributions to the perception event")


class AnalyzeTextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, max_length=256)
    explain: bool = False

    @field_validator("texts")
    @classmethod
    def _each_fits(cls, texts: list[str]) -> list[str]:
        for i, t in enumerate(texts):
            if len(t) > MAX_TEXT_CHARS:
                raise ValueError(f"texts[{i}] has {len(t)} characters; at most {MAX_TEXT_CHARS}")
        return texts


class UserAudio(_Client):
    type: Literal["user.audio"]
    audio: str = Field(description="base64 of little-endian PCM16 mono samples")
    sample_rate: Literal[16000] = 16000
    format: Literal["pcm16"] = "pcm16"


class UserAudioEnd(_Client):
    type: Literal["user.audio.end"]


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A binary WebSocket frame: PCM16 mono 16 kHz samples."""

    data: bytes


class UserImage(_Client):
    type: Literal["user.image"]
    image: str = Field(description="base64 of one JPEG or PNG camera frame; needs consent.face in session.start")
    explain: bool = Field(False, description="attach a 6x6 occlusion saliency grid of the face to the perception event")


class ResponseCancel(_Client):
    type: Literal["response.cancel"]


class ResponseAudioPlayed(_Client):
    type: Literal["response.audio.played"]
    response_id: str = Field(max_length=64, description="the spoken reply (response.audio.start's response_id)")
    ms: float = Field(ge=0, le=3_600_000, description="milliseconds of its audio the user heard")
    interrupted: bool = Field(
        False,
        description="playback was stopped (barge-in, or the user stopped it): history "
        "keeps the words heard, marked interrupted",
    )


class ControlsOverride(_Client):
    type: Literal["controls.override"]
    controls: dict[str, float | str] = Field(description="signal -> value; clamped to the profile's limits")


ClientJSON = (
    SessionStart
    | UserText
    | UserAudio
    | UserAudioEnd
    | UserImage
    | ResponseCancel
    | ResponseAudioPlayed
    | ControlsOverride
    | ToolsUpdate
    | ToolResultEvent
)  # the client's JSON events, declared once; their `type` tags and the parser derive from this union
ClientEvent = Annotated[ClientJSON, Field(discriminator="type")]
CLIENT_TYPES: tuple[str, ...] = tuple(get_args(m.model_fields["type"].annotation)[0] for m in get_args(ClientJSON))


def _wire_model(event: type[Event]) -> type[BaseModel]:
    """The pydantic model of one agent event: its dataclass fields, their types and defaults, plus its `type` tag."""
    hints = get_type_hints(event)
    spec: dict[str, Any] = {"type": (Literal[event.type], ...)}
    for f in fields(event):
        if f.default is not MISSING:
            default: Any = f.default
        elif f.default_factory is not MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        spec[f.name] = (hints[f.name], default)
    config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)
    return create_model(event.__name__, __config__=config, __doc__=event.__doc__, **spec)


_WIRE_MODELS = tuple(_wire_model(e) for e in EVENTS)
ServerEvent: Any = Annotated[Union[_WIRE_MODELS], Field(discriminator="type")]  # noqa: UP007 (a union of a tuple built at import)


_CLIENT = TypeAdapter(ClientEvent)
_SERVER: TypeAdapter[Any] = TypeAdapter(ServerEvent)


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


ClientMessage = ClientJSON | AudioFrame


# Only a camera frame may pass MAX_FRAME_BYTES, and its size is judged before any parsing: its `type` comes first.
_LARGE_EVENT = re.compile(r'\s*\{\s*"type"\s*:\s*"user\.image"')


def is_large(raw: str | bytes) -> bool:
    """A text frame worth parsing off the event loop (a camera frame)."""
    return isinstance(raw, str) and len(raw) > MAX_FRAME_BYTES


def parse_client(raw: str | bytes) -> ClientMessage:
    """One client frame → a typed event, or ProtocolError with a code saying what was wrong."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_AUDIO_FRAME_BYTES:
            raise ProtocolError(
                "audio_frame_too_large", f"an audio frame may be at most {MAX_AUDIO_FRAME_BYTES} bytes (2 s)"
            )
        if raw[:4] in (b"RIFF", b"fLaC", b"OggS", b"ID3\x03") or raw[:2] == b"\xff\xfb":
            raise ProtocolError(
                "invalid_audio",
                "binary frames carry raw PCM16 mono 16 kHz samples, not an audio file; "
                "use POST /v1/analyze/voice for files",
            )
        return AudioFrame(raw)
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_IMAGE_EVENT_BYTES or size > MAX_FRAME_BYTES and not _LARGE_EVENT.match(raw, 0, 256):
        raise ProtocolError(
            "message_too_large",
            f"an event may be at most {MAX_FRAME_BYTES} bytes "
            f"({MAX_IMAGE_EVENT_BYTES} for user.image, whose `type` comes first)",
        )
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_message", "an event must be a JSON object with a string `type`")
    if size > MAX_FRAME_BYTES and data["type"] != "user.image":
        raise ProtocolError("message_too_large", f"an event may be at most {MAX_FRAME_BYTES} bytes")
    if data["type"] not in CLIENT_TYPES:
        raise ProtocolError(
            "unknown_type", f"unknown event type {data['type'][:64]!r}; expected one of {list(CLIENT_TYPES)}"
        )
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or "event"
        if data["type"] == "user.text" and err["type"] == "string_too_long":
            raise ProtocolError("text_too_long", f"text may be at most {MAX_TEXT_CHARS} characters") from None
        raise ProtocolError("invalid_message", f"{data['type']}: {where}: {err['msg']}") from None


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per event class: dataclasses.fields shows in a profile per delta


def _field_names(event: Event) -> tuple[str, ...]:
    cls = type(event)
    if (names := _FIELD_NAMES.get(cls)) is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(event))
    return names


def _validated(event: Event) -> BaseModel:
    """An agent event validated (once) against the published schema."""
    model: BaseModel = _SERVER.validate_python(
        {"type": event.type, **{name: getattr(event, name) for name in _field_names(event)}}
    )
    return model


def to_wire(event: Event) -> str:
    """An agent event as the WebSocket sends it: validated against the published schema and serialised."""
    return _validated(event).model_dump_json()


def wire_dict(event: Event) -> dict[str, Any]:
    """The same, as a JSON-ready dict (for a response that carries events inside its own body)."""
    return _validated(event).model_dump(mode="json")


def json_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "persona-agent wire protocol",
        "version": PROTOCOL_VERSION,
        "endpoint": "/v1/chat",
        "limits": {
            "max_frame_bytes": MAX_FRAME_BYTES,
            "max_text_chars": MAX_TEXT_CHARS,
            "max_audio_frame_bytes": MAX_AUDIO_FRAME_BYTES,
            "max_image_bytes": MAX_IMAGE_BYTES,
            "max_image_event_bytes": MAX_IMAGE_EVENT_BYTES,
            "max_websocket_message_bytes": MAX_WS_MESSAGE_BYTES,
        },
        "binary_frames": "PCM16 little-endian mono 16 kHz audio (needs consent.voice in session.start)",
        "client": _CLIENT.json_schema(),
        "server": _SERVER.json_schema(mode="serialization"),  # what is sent: defaulted fields are always there
    }
