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
    ResponseToolCall,
    SafetyEvent,
    SessionStarted,
)
from prompts import Message
from prompts.tools import MAX_TOOLS, ToolCall, ToolResult, ToolUse
from server.protocol import MAX_TEXT_CHARS, NamedChoice, ToolSpec, tool_use, wire_dict

MAX_MESSAGES = 200  # a longer history is refused; the server keeps its own window of it anyway
EXTENSION = "persona_agent"


class FunctionCall(BaseModel):
    name: str
    arguments: str = "{}"


class ToolCallSpec(BaseModel):
    """A call the model made, as the client sends it back in the assistant message of the history."""

    id: str = Field(max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallSpec] | None = Field(default=None, max_length=32)  # on an assistant message
    tool_call_id: str | None = Field(default=None, max_length=128)  # on a tool message: the call it answers

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
    tools: list[ToolSpec] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["auto", "none", "required"] | NamedChoice | None = None

    model_config = {"extra": "allow"}

    def tool_use(self, calls: tuple[ToolCall, ...] = (), results: tuple[ToolResult, ...] = ()) -> ToolUse:
        """The tools offered and how the model may use them (ValueError when they do not fit together)."""
        return tool_use(self.tools, self.tool_choice, calls, results)

    def split(self) -> tuple[list[Message], str, ToolUse]:
        """(history, the last user message, the tools). System and developer messages are *not* passed on: nothing
        a client sends becomes an instruction in our system prompt (the agent profile is chosen by `model`). When
        the messages end with the outputs of tool calls (`tool` messages after the assistant message that made the
        calls), the turn continues: the last user message is answered again, with the outputs as quoted data."""
        turns = [m for m in self.messages if m.role in ("user", "assistant", "tool")]
        calls: tuple[ToolCall, ...] = ()
        results: list[ToolResult] = []
        if turns and turns[-1].role == "tool":
            k = len(turns)
            while k > 0 and turns[k - 1].role == "tool":
                k -= 1
            made = turns[k - 1] if k > 0 else None
            if made is None or made.role != "assistant" or not made.tool_calls:
                raise ValueError("tool messages must follow the assistant message whose tool_calls they answer")
            calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in made.tool_calls)
            names = {c.id: c.name for c in calls}
            for m in turns[k:]:
                if m.tool_call_id not in names:
                    raise ValueError(f"tool message answers no call of the assistant message: {m.tool_call_id!r}")
                results.append(ToolResult(m.tool_call_id, names[m.tool_call_id], m.text()))
            turns = turns[: k - 1]
        turns = [m for m in turns if m.role != "tool" and not (m.role == "assistant" and m.tool_calls and not m.text())]
        if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
            raise ValueError("the last message must be a non-empty user message (or tool outputs answering its calls)")
        text = turns[-1].text()
        if any(len(m.text()) > MAX_TEXT_CHARS for m in turns):
            raise ValueError(f"each message may be at most {MAX_TEXT_CHARS} characters")
        history = [Message("user" if m.role == "user" else "assistant", m.text()) for m in turns[:-1] if m.text()]
        return history, text, self.tool_use(calls, tuple(results))


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
    calls: list[ResponseToolCall] = field(default_factory=list)
    extension: dict[str, Any] = field(default_factory=lambda: {"perception": [], "safety": []})

    def take(self, event: Event) -> ResponseDelta | ResponseToolCall | None:
        """Keep a non-text event; a delta or a tool call is handed back for the stream."""
        if isinstance(event, ResponseDelta):
            return event
        if isinstance(event, ResponseToolCall):
            self.calls.append(event)
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
    if done is not None and done.finish_reason in ("length", "tool_calls"):
        return done.finish_reason
    return "stop"


def _call(call: ResponseToolCall) -> dict[str, Any]:
    return {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


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
                "message": {
                    "role": "assistant",
                    "content": (done.text if done else "") or (None if seen.calls else ""),
                    **({"tool_calls": [_call(c) for c in seen.calls]} if seen.calls else {}),
                },
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
            if isinstance(piece := seen.take(event), ResponseDelta):
                yield _chunk(cid, model, created, {"content": piece.text})
            elif isinstance(piece, ResponseToolCall):  # whole: the guard and the screening see it before the client
                yield _chunk(cid, model, created, {"tool_calls": [{"index": len(seen.calls) - 1, **_call(piece)}]})
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
