"""Wire protocol v1: JSON events with a `type` field over ws://HOST:PORT/v1/chat. The pydantic models are the truth;
`persona-agent schema` exports them as server/protocol.schema.json."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agent import Event

PROTOCOL_VERSION = "1"
MAX_FRAME_BYTES = 64 * 1024  # one JSON event
MAX_TEXT_CHARS = 8000  # one user message


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: bool = True
    voice: bool = False
    face: bool = False


class SessionStart(_Client):
    type: Literal["session.start"]
    profile: str | None = Field(None, max_length=64, description="agent profile id; default from settings")
    user_id: str | None = Field(None, max_length=128, description="stable id to keep a persona across sessions")
    resume: str | None = Field(None, max_length=64, description="session_id of an earlier session to continue")
    consent: Consent = Field(default_factory=Consent)


class UserText(_Client):
    type: Literal["user.text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class ResponseCancel(_Client):
    type: Literal["response.cancel"]


class ControlsOverride(_Client):
    type: Literal["controls.override"]
    controls: dict[str, float | str] = Field(description="signal -> value; clamped to the profile's limits")


ClientEvent = Annotated[SessionStart | UserText | ResponseCancel | ControlsOverride, Field(discriminator="type")]
CLIENT_TYPES = ("session.start", "user.text", "response.cancel", "controls.override")


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionStartedOut(_Server):
    type: Literal["session.started"]
    session_id: str
    profile: str
    resumed: bool
    history: list[dict[str, Any]]
    protocol: str = PROTOCOL_VERSION


class PerceptionOut(_Server):
    type: Literal["perception"]
    modality: Literal["text", "voice", "face"]
    emotions: dict[str, float]
    top: str
    confidence: float
    valence: float
    arousal: float
    model: str
    latency_ms: float
    evidence: dict[str, Any]


class PersonaOut(_Server):
    type: Literal["persona"]
    state: dict[str, Any]
    gates: dict[str, float]
    present: list[str]
    fusion_model: str


class ControlsOut(_Server):
    type: Literal["controls"]
    controls: dict[str, Any]
    sampling: dict[str, Any]
    rules_fired: list[dict[str, Any]]
    overridden: dict[str, Any]
    rejected_overrides: dict[str, str]


class ResponseDeltaOut(_Server):
    type: Literal["response.delta"]
    response_id: str
    text: str


class ResponseDoneOut(_Server):
    type: Literal["response.done"]
    response_id: str
    text: str
    finish_reason: str | None
    usage: dict[str, int | None]
    timings_ms: dict[str, float | None]
    explanation: dict[str, Any]


class ResponseCancelledOut(_Server):
    type: Literal["response.cancelled"]
    response_id: str
    text: str


class ControlsUpdatedOut(_Server):
    type: Literal["controls.updated"]
    overrides: dict[str, Any]
    rejected: dict[str, str]


class ErrorOut(_Server):
    type: Literal["error"]
    code: str
    message: str
    retryable: bool


ServerEvent = Annotated[
    SessionStartedOut | PerceptionOut | PersonaOut | ControlsOut | ResponseDeltaOut | ResponseDoneOut
    | ResponseCancelledOut | ControlsUpdatedOut | ErrorOut,
    Field(discriminator="type"),
]
_CLIENT = TypeAdapter(ClientEvent)
_SERVER = TypeAdapter(ServerEvent)


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def parse_client(raw: str | bytes) -> SessionStart | UserText | ResponseCancel | ControlsOverride:
    """One client frame → a typed event, or ProtocolError with a code saying what was wrong."""
    if isinstance(raw, bytes):
        raise ProtocolError("unsupported_binary", "binary frames are not accepted on this endpoint yet; send JSON text frames")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise ProtocolError("message_too_large", f"an event may be at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_message", "an event must be a JSON object with a string `type`")
    if data["type"] not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"unknown event type {data['type'][:64]!r}; expected one of {list(CLIENT_TYPES)}")
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or "event"
        if data["type"] == "user.text" and err["type"] == "string_too_long":
            raise ProtocolError("text_too_long", f"text may be at most {MAX_TEXT_CHARS} characters") from None
        raise ProtocolError("invalid_message", f"{data['type']}: {where}: {err['msg']}") from None


def to_wire(event: Event) -> str:
    """Validate an agent event against the published schema and serialise it."""
    payload = {"type": event.type, **asdict(event)}
    return _SERVER.validate_python(payload).model_dump_json()


def json_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "persona-agent wire protocol",
        "version": PROTOCOL_VERSION,
        "endpoint": "/v1/chat",
        "limits": {"max_frame_bytes": MAX_FRAME_BYTES, "max_text_chars": MAX_TEXT_CHARS},
        "client": _CLIENT.json_schema(),
        "server": _SERVER.json_schema(),
    }
