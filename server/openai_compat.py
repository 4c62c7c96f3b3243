"""`POST /v1/chat/completions`, OpenAI-compatible: the shapes at the edge and the translation of our turn's events
into a chat completion (or its `chat.completion.chunk` stream). The turn itself is `Agent.complete`, whose events
this module iterates: the same pipeline as the WebSocket. Our extra readings travel in `persona_agent` on the response (and on the final chunk):
the perception, persona, controls and safety events, the explanation, the session id and the model that answered."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.events import (
    ControlsEvent,
    ErrorEvent,
    Event,
    PerceptionEvent,
    PersonaEvent,
    ResponseDelta,
    ResponseDone,
    SafetyEvent,
    SessionStarted,
)
from prompts import Message
from server.protocol import MAX_TEXT_CHARS, wire_dict

MAX_MESSAGES = 200  # a longer history is refused; the server keeps its own window of it anyway
EXTENSION = "persona_agent"


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The text of the message (OpenAI's list of content parts: its text parts, joined)."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """What the OpenAI SDK sends. `model` names one of our agent profiles (`persona-agent` or anything else: the
    default profile); `user` is our user_id (the persona carried across requests). Sampling fields the SDK may send
    (temperature, max_tokens, ...) are accepted and ignored: the control signals set them."""

    model: str = "persona-agent"
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    user: str | None = Field(default=None, max_length=128)
    user_token: str | None = Field(
        default=None,
        max_length=1024,
        description="with a publishable key: a user token "
        "(signed by your backend with its secret key) that vouches for `user`",
    )
    locale: str | None = Field(default=None, max_length=16, description="for the crisis resources, e.g. en-GB")

    model_config = {"extra": "allow"}

    def split(self) -> tuple[list[Message], str]:
        """(history, the last user message). System and developer messages are *not* passed on: nothing a client
        sends becomes an instruction in our system prompt (the agent profile is chosen by `model`)."""
        turns = [m for m in self.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
            raise ValueError("the last message must be a non-empty user message")
        text = turns[-1].text()
        if any(len(m.text()) > MAX_TEXT_CHARS for m in turns):
            raise ValueError(f"each message may be at most {MAX_TEXT_CHARS} characters")
        history = [Message("user" if m.role == "user" else "assistant", m.text()) for m in turns[:-1] if m.text()]
        return history, text


def profile_of(model: str, profiles: frozenset[str]) -> str | None:
    """`persona-agent:companion` or `companion` → that profile; anything else → the default profile."""
    name = model.split(":", 1)[1] if model.startswith("persona-agent:") else model
    return name if name in profiles else None


@dataclass
class Outcome:
    """What the turn said besides its text, as the events go by: the session, the reply (or the error), and the
    readings the extension field carries (each event in its published wire shape)."""

    session_id: str = ""
    done: ResponseDone | None = None
    error: ErrorEvent | None = None
    extension: dict[str, Any] = field(default_factory=lambda: {"perception": [], "safety": []})

    def take(self, event: Event) -> ResponseDelta | None:
        """Keep a non-text event; a delta is handed back for the stream."""
        if isinstance(event, ResponseDelta):
            return event
        if isinstance(event, SessionStarted):
            self.session_id = event.session_id
        elif isinstance(event, ResponseDone):
            self.done = event
        elif isinstance(event, ErrorEvent):
            self.error = event
        elif isinstance(event, PerceptionEvent | SafetyEvent):
            self.extension[event.type].append(wire_dict(event))
        elif isinstance(event, PersonaEvent | ControlsEvent):
            self.extension[event.type] = wire_dict(event)
        return None

    def final(self) -> dict[str, Any]:
        out = {**self.extension, "session_id": self.session_id}
        if self.done is not None:
            done = wire_dict(self.done)
            out.update(model=done["model"], explanation=done["explanation"], timings_ms=done["timings_ms"])
        if self.error is not None:
            out["error"] = wire_dict(self.error)
        return out


def _finish(done: ResponseDone | None) -> str:
    return "length" if done is not None and done.finish_reason == "length" else "stop"


def completion(cid: str, model: str, created: int, seen: Outcome) -> dict[str, Any]:
    done = seen.done
    usage = (
        {"prompt_tokens": done.usage.prompt_tokens, "completion_tokens": done.usage.completion_tokens} if done else {}
    )
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": done.text if done else ""},
                "finish_reason": _finish(done),
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens") or 0,
            "completion_tokens": usage.get("completion_tokens") or 0,
            "total_tokens": (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0),
        },
        EXTENSION: seen.final(),
    }


def _chunk(
    cid: str,
    model: str,
    created: int,
    delta: dict[str, Any],
    finish: str | None = None,
    extension: dict[str, Any] | None = None,
) -> str:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if extension is not None:
        body[EXTENSION] = extension
    return f"data: {json.dumps(body)}\n\n"


async def stream(events: AsyncGenerator[Event, None], model: str) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format: the role, each delta as the guard releases it, then a final chunk
    with finish_reason and the extension field, then `[DONE]`. A client that goes away stops the turn (kept in its
    session as cut short, as on the WebSocket)."""
    cid, created, seen = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), Outcome()
    async with aclosing(events):
        yield _chunk(cid, model, created, {"role": "assistant", "content": ""})
        async for event in events:
            if (delta := seen.take(event)) is not None:
                yield _chunk(cid, model, created, {"content": delta.text})
    if seen.done is None and seen.error is not None:  # the turn could not answer: OpenAI's in-stream error shape
        yield f"data: {json.dumps({'error': {'message': seen.error.message, 'type': seen.error.code, 'code': seen.error.code}})}\n\n"
        return
    yield _chunk(cid, model, created, {}, _finish(seen.done), seen.final())
    yield "data: [DONE]\n\n"


class TurnFailed(RuntimeError):
    """The turn ended without a reply (the LLM failed): the route answers 503 with the error event's message."""


async def respond(events: AsyncGenerator[Event, None], model: str) -> dict[str, Any]:
    seen = Outcome()
    async with aclosing(events):
        async for event in events:
            seen.take(event)
    if seen.done is None:
        raise TurnFailed(seen.error.message if seen.error is not None else "the turn ended without a reply")
    return completion(f"chatcmpl-{uuid.uuid4().hex}", model, int(time.time()), seen)
