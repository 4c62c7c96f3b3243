"""`/v1/realtime`: OpenAI's Realtime API (its GA events) over the same conversation as `/v1/chat` — perception,
screening, fusion, persona, policy, guard, Piper speech, end of turn, barge-in — so a voice frontend written for the
Realtime API (the `openai` SDK's realtime client, Pipecat's OpenAIRealtimeLLMService, ...) reaches us unchanged.

The client's events become calls on the `Conversation`; the conversation's typed events become Realtime server
events. Audio is PCM16 mono at 24 kHz in both directions, base64 in JSON, as the API has it: resampled to our 16 kHz
input, and from Piper's 22.05 kHz voice. Our readings travel as extra server events named `persona_agent.*` (on by
default; `session.update` with `persona_agent: {"events": false}` turns them off, `{"locale": "en-GB"}` picks the
crisis resources); clients that do not know them skip them. A client's `instructions` never reach the model (as
system messages on /v1/chat/completions do not): the agent profile, picked by `model`, writes the system prompt;
`session.created` says what was ignored.

Function tools as the API has them: `session.tools` / `tool_choice`; a call is a `function_call` output item
(`response.function_call_arguments.delta` / `.done`, and in `response.done`'s output); the client adds a
`function_call_output` item per call and sends `response.create`, and the same turn goes on with their outputs, under
the controls it had.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from agent import (
    Agent,
    AudioBackpressure,
    Conversation,
    FaceUnavailable,
    ImageBackpressure,
    InboxFull,
    InvalidAudio,
    UnknownCall,
    UnknownProfile,
    VoiceUnavailable,
)
from agent.events import (
    ControlsEvent,
    ErrorEvent,
    Event,
    FaceAbsent,
    PerceptionEvent,
    PersonaEvent,
    ResponseAudio,
    ResponseAudioDone,
    ResponseAudioStart,
    ResponseAudioTruncated,
    ResponseCancelled,
    ResponseDelta,
    ResponseDone,
    ResponseInterrupted,
    ResponseToolCall,
    SafetyEvent,
    SpeechStarted,
    TranscriptEvent,
)
from agent.metrics import ERRORS, FRAMES
from agent.sessions import LOCAL_TENANT, SessionErased
from prompts.tools import NO_TOOLS, Tool, ToolUse
from server.limits import Quota
from server.protocol import MAX_IMAGE_BYTES, MAX_TEXT_CHARS, FunctionSpec, wire_dict

log = logging.getLogger(__name__)
RATE = 24_000  # the Realtime API's PCM16 rate, in and out
OUR_RATE = 16_000  # what our voice input reads
EXTENSION = "persona_agent"
IGNORED_SESSION_FIELDS = ("instructions", "prompt", "tracing", "reasoning", "temperature")


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


ITEM = "item_"  # an assistant item's id is this + our response id (so a truncate names the reply it cut)


def _realtime_tool(tool: Tool) -> dict[str, Any]:
    """A tool as the Realtime API writes it: flat, {"type": "function", "name", "description", "parameters"}."""
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}


def _tool_use(tools: Any, choice: Any) -> ToolUse:
    """session.tools and tool_choice as the API has them (ValueError with what is wrong)."""
    if not isinstance(tools, list):
        raise ValueError("`tools` must be a list of function tools")
    offered = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type", "function") != "function":
            raise ValueError(f"tools[{i}]: only function tools ({{'type': 'function', 'name': ...}})")
        try:
            spec = FunctionSpec.model_validate({k: v for k, v in t.items() if k != "type"})
        except ValidationError as exc:
            raise ValueError(f"tools[{i}]: {exc.errors()[0]['msg']}") from None
        offered.append(Tool(spec.name, spec.description, spec.parameters))
    if isinstance(choice, dict):
        choice = choice.get("name") if choice.get("type") == "function" else None
    if not isinstance(choice, str):
        raise ValueError("tool_choice: auto, none, required, or {'type': 'function', 'name': ...}")
    return ToolUse(tuple(offered), choice)


def _item_of(ours: str) -> str:
    return ITEM + ours


@dataclass
class Reply:
    """One response as the Realtime API sees it: its ids, its modality, what was written."""

    ours: str  # our response id (agent/events.py), from which the Realtime ids are made
    modalities: tuple[str, ...]
    text: list[str] = field(default_factory=list)
    resampler: Any = None  # soxr.ResampleStream from Piper's rate to 24 kHz
    metadata: dict[str, str] | None = (
        None  # the client's response.metadata, echoed (LiveKit matches its requests by it)
    )
    calls: list[dict[str, Any]] = field(default_factory=list)  # its function_call items, after the message

    @property
    def id(self) -> str:
        return f"resp_{self.ours}"

    @property
    def item_id(self) -> str:
        return _item_of(self.ours)

    @property
    def spoken(self) -> bool:
        return "audio" in self.modalities

    def item(self, status: str) -> dict[str, Any]:
        kind = (
            {"type": "output_audio", "transcript": "".join(self.text)}
            if self.spoken
            else {"type": "output_text", "text": "".join(self.text)}
        )
        content = [kind] if status == "completed" or self.text else []
        return {
            "id": self.item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
        }


class RealtimeConnection:
    """One `/v1/realtime` WebSocket: parse each client event, call the conversation, translate what it emits."""

    def __init__(
        self,
        agent: Agent,
        ws: WebSocket,
        profile: str | None,
        quota: Quota | None = None,
        tenant: str = LOCAL_TENANT,
        idle_timeout_s: float = 600.0,
    ) -> None:
        self.agent, self.ws, self.profile, self.quota, self.tenant = agent, ws, profile, quota, tenant
        self.idle_timeout_s = idle_timeout_s
        self.conversation: Conversation | None = None
        self.can_speak = False
        self.modalities: tuple[str, ...] = ("audio",)
        self.extension = True
        self.ignored: list[str] = []
        self.spoken_items: dict[str, str] = {}  # a spoken user item's id -> its key among the conversation's waiting
        self.heard: dict[int, str] = {}  # our utterance id -> its transcript so far (the deltas sent)
        self.turn_detection: dict[str, Any] | None = {"type": "server_vad"}
        self.metadata: list[dict[str, str] | None] = []  # per response.create waiting for its response, in order
        self.reply: Reply | None = None
        self.tools: ToolUse = NO_TOOLS  # session.tools and tool_choice, as the conversation offers them
        self.utterances: dict[int, str] = {}  # our utterance id -> its user item id
        self.received_ms = 0.0  # audio received so far
        self._to_ours = soxr.ResampleStream(RATE, OUR_RATE, 1, dtype="float32")
        self._send = asyncio.Lock()

    # --- out -----------------------------------------------------------------------------------------------------

    async def send(self, type_: str, **body: Any) -> None:
        async with self._send:
            if self.ws.application_state != WebSocketState.CONNECTED:
                return
            try:
                await self.ws.send_text(json.dumps({"type": type_, "event_id": _id("event"), **body}))
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client left; run() ends and closes the conversation

    async def error(self, code: str, message: str, retryable: bool = False, event_id: str | None = None) -> None:
        """A Realtime `error` event: `server_error` when trying again may work, else `invalid_request_error`."""
        ERRORS.labels(code).inc()
        kind = "server_error" if retryable else "invalid_request_error"
        await self.send("error", error={"type": kind, "code": code, "message": message, "event_id": event_id})

    def session(self) -> dict[str, Any]:
        spoken = self.can_speak
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.conversation.record.id if self.conversation else None,
            "model": f"persona-agent:{self.conversation.record.profile_id}" if self.conversation else "persona-agent",
            "output_modalities": list(self.modalities),
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": self.turn_detection},
                "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "piper" if spoken else None},
            },
            "tools": [_realtime_tool(t) for t in self.tools.tools],
            "tool_choice": self.tools.choice
            if self.tools.choice in ("auto", "none", "required")
            else {"type": "function", "name": self.tools.choice},
            EXTENSION: {
                "events": self.extension,
                "ignored": self.ignored,
                "note": "instructions are not passed to the model: the agent profile writes the system prompt",
            },
        }

    # --- the conversation's events, as Realtime events -------------------------------------------------------------

    async def translate(self, event: Event) -> None:
        if isinstance(event, ResponseDelta):
            reply = await self._reply(event.response_id)
            reply.text.append(event.text)
            kind = "response.output_audio_transcript.delta" if reply.spoken else "response.output_text.delta"
            await self.send(kind, **self._where(reply), delta=event.text)
        elif isinstance(event, ResponseAudioStart):
            (await self._reply(event.response_id)).resampler = soxr.ResampleStream(
                event.sample_rate, RATE, 1, dtype="int16"
            )
        elif isinstance(event, ResponseAudio):
            reply = await self._reply(event.response_id)
            pcm = np.frombuffer(base64.b64decode(event.audio), dtype=np.int16)
            await self._audio(reply, reply.resampler.resample_chunk(pcm) if reply.resampler else pcm)
        elif isinstance(event, ResponseAudioDone):
            reply = await self._reply(event.response_id)
            if reply.resampler is not None:
                await self._audio(reply, reply.resampler.resample_chunk(np.zeros(0, np.int16), last=True))
            await self.send("response.output_audio.done", **self._where(reply))
        elif isinstance(event, ResponseToolCall):
            await self._call(event)
        elif isinstance(event, ResponseDone):
            await self._done(event)
        elif isinstance(event, ResponseCancelled | ResponseInterrupted):
            # Stopped while being written: it ends as cancelled. Stopped after response.done (its audio was still
            # playing): nothing more is sent; the client truncates the item to what it played, as in the API.
            if self.reply is not None and self.reply.ours == event.response_id:
                await self._finish(event.response_id, "cancelled", None)
        elif isinstance(event, SpeechStarted | TranscriptEvent):
            await self._speech(event)
        elif isinstance(event, ResponseAudioTruncated):
            await self.send(
                "conversation.item.truncated",
                item_id=_item_of(event.response_id),
                content_index=0,
                audio_end_ms=int(event.ms),
            )
        elif isinstance(event, ErrorEvent):
            await self.error(event.code, event.message, event.retryable)
            if event.code.startswith("llm_") and self.reply is not None:
                await self._finish(self.reply.ours, "failed", None)
        elif isinstance(event, PerceptionEvent | PersonaEvent | ControlsEvent | SafetyEvent | FaceAbsent):
            if self.extension:
                await self.send(
                    f"{EXTENSION}.{event.type.replace('.', '_')}",
                    **{k: v for k, v in wire_dict(event).items() if k != "type"},
                )

    def _where(self, reply: Reply) -> dict[str, Any]:
        return {"response_id": reply.id, "item_id": reply.item_id, "output_index": 0, "content_index": 0}

    async def _reply(self, ours: str) -> Reply:
        """The response being written (our response id `ours`), announced on its first event."""
        if self.reply is None:
            modalities = self.modalities if self._can_speak() else ("text",)
            self.reply = reply = Reply(ours, modalities, metadata=self.metadata.pop(0) if self.metadata else None)
            response = {
                "id": reply.id,
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
                "output_modalities": list(reply.modalities),
                "metadata": reply.metadata,
            }
            await self.send("response.created", response=response)
            await self.send(
                "response.output_item.added", response_id=reply.id, output_index=0, item=reply.item("in_progress")
            )
            await self.send("conversation.item.added", item=reply.item("in_progress"))
            part = {"type": "audio", "transcript": ""} if reply.spoken else {"type": "text", "text": ""}
            await self.send("response.content_part.added", **self._where(reply), part=part)
        return self.reply

    def _can_speak(self) -> bool:
        return "audio" in self.modalities and self.can_speak

    async def _audio(self, reply: Reply, pcm: np.ndarray) -> None:
        if len(pcm):
            delta = base64.b64encode(pcm.astype(np.int16).tobytes()).decode("ascii")
            await self.send("response.output_audio.delta", **self._where(reply), delta=delta)

    async def _call(self, event: ResponseToolCall) -> None:
        """A function call as the API streams it: an output item of its own, its arguments (whole: our guard and
        screening see a call before the client does), then the item done."""
        reply = await self._reply(event.response_id)
        index = 1 + len(reply.calls)
        item = {
            "id": f"item_{event.call_id}"[:64],
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": event.call_id,
            "name": event.name,
            "arguments": "",
        }
        where = {"response_id": reply.id, "item_id": item["id"], "output_index": index}
        await self.send("response.output_item.added", response_id=reply.id, output_index=index, item=item)
        await self.send("conversation.item.added", item=item)
        await self.send("response.function_call_arguments.delta", **where, call_id=event.call_id, delta=event.arguments)
        await self.send(
            "response.function_call_arguments.done",
            **where,
            call_id=event.call_id,
            name=event.name,
            arguments=event.arguments,
        )
        done = {**item, "status": "completed", "arguments": event.arguments}
        reply.calls.append(done)
        await self.send("response.output_item.done", response_id=reply.id, output_index=index, item=done)
        await self.send("conversation.item.done", item=done)

    async def _done(self, event: ResponseDone) -> None:
        reply = await self._reply(event.response_id)
        text = "".join(reply.text)
        if reply.spoken:
            await self.send("response.output_audio_transcript.done", **self._where(reply), transcript=text)
            part = {"type": "audio", "transcript": text}
        else:
            await self.send("response.output_text.done", **self._where(reply), text=text)
            part = {"type": "text", "text": text}
        await self.send("response.content_part.done", **self._where(reply), part=part)
        usage = {"input_tokens": event.usage.prompt_tokens or 0, "output_tokens": event.usage.completion_tokens or 0}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        await self._finish(event.response_id, "completed", usage)
        if self.extension:
            done = wire_dict(event)
            await self.send(
                f"{EXTENSION}.explanation",
                response_id=reply.id,
                model=done["model"],
                explanation=done["explanation"],
                timings_ms=done["timings_ms"],
            )

    async def _finish(self, ours: str, status: str, usage: dict[str, int] | None) -> None:
        reply = await self._reply(ours)
        item = reply.item("completed" if status == "completed" else "incomplete")
        await self.send("response.output_item.done", response_id=reply.id, output_index=0, item=item)
        await self.send("conversation.item.done", item=item)
        response = {
            "id": reply.id,
            "object": "realtime.response",
            "status": status,
            "output": [item, *reply.calls],
            "output_modalities": list(reply.modalities),
            "metadata": reply.metadata,
            "usage": usage,
        }
        self.reply = None
        await self.send("response.done", response=response)

    async def _speech(self, event: SpeechStarted | TranscriptEvent) -> None:
        item = self.utterances.setdefault(event.utterance_id, _id("item"))
        if isinstance(event, SpeechStarted):
            await self.send("input_audio_buffer.speech_started", audio_start_ms=int(self.received_ms), item_id=item)
            return
        if not event.final:
            await self._transcript_delta(item, event)
            return
        self.utterances.pop(event.utterance_id, None)
        self.heard.pop(event.utterance_id, None)
        if self.conversation is not None and not self.conversation.answer_speech:
            self.spoken_items[item] = f"utterance-{event.utterance_id}"  # held for response.create, deletable
        await self.send("input_audio_buffer.speech_stopped", audio_end_ms=int(self.received_ms), item_id=item)
        await self.send("input_audio_buffer.committed", item_id=item)
        user = {
            "id": item,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": event.text}],
        }
        await self.send("conversation.item.added", item=user)
        usage = {"type": "duration", "seconds": event.duration_s or 0.0}
        await self.send(
            "conversation.item.input_audio_transcription.completed",
            item_id=item,
            content_index=0,
            transcript=event.text,
            usage=usage,
        )
        await self.send("conversation.item.done", item=user)

    async def _transcript_delta(self, item: str, event: TranscriptEvent) -> None:
        """Our interim transcripts are whole (each re-reads the utterance so far): what extends the words already
        sent goes out as a delta; a revision of earlier words waits for the completed transcript."""
        before = self.heard.get(event.utterance_id, "")
        if event.text.startswith(before) and len(event.text) > len(before):
            self.heard[event.utterance_id] = event.text
            await self.send(
                "conversation.item.input_audio_transcription.delta",
                item_id=item,
                content_index=0,
                delta=event.text[len(before) :],
            )

    # --- in ------------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        if not await self._open():
            return
        try:
            while True:
                try:
                    msg = await asyncio.wait_for(self.ws.receive(), self.idle_timeout_s)
                except TimeoutError:
                    if self.conversation is not None and self.conversation.busy:
                        continue
                    await self.error("idle_timeout", f"no activity for {self.idle_timeout_s:g} s; closing")
                    await self.ws.close(code=1001)
                    return
                if msg["type"] == "websocket.disconnect":
                    return
                try:
                    data = json.loads(msg.get("text") or msg.get("bytes") or b"")
                except ValueError:
                    await self.error("invalid_json", "each message must be one JSON object")
                    continue
                if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                    await self.error("invalid_event", "each message must be a JSON object with a string `type`")
                    continue
                try:
                    await self.dispatch(data)
                except SessionErased:
                    if self.conversation is not None:
                        await self.conversation.erase()
                except Exception:  # a bug must not end the session: say so and keep reading
                    log.exception("realtime dispatch failed")
                    await self.error("internal_error", "the server failed to handle that event", True)
        except WebSocketDisconnect:
            return
        finally:
            if self.conversation is not None:
                await self.conversation.close()

    async def _open(self) -> bool:
        """A new session of the caller's tenant on the profile `model` names; `session.created`."""
        try:
            record, _ = await self.agent.start_session(self.profile, None, None, self.tenant)
        except UnknownProfile as exc:
            await self.error("unknown_profile", str(exc))
            await self.ws.close(code=1008)
            return False
        admit = self.quota.take if self.quota is not None else None
        self.conversation = self.agent.converse(record, self.translate, self._taken_over, admit=admit, voice_reply=True)
        self.can_speak = self.conversation.voice_reply  # the server has a voice
        await self.send("session.created", session=self.session())
        return True

    async def _taken_over(self) -> None:
        """Another connection resumed this session: say so, and close (the conversation is already closed)."""
        self.conversation = None
        await self.error("session_taken_over", "this session was resumed elsewhere; this one is closed")
        try:
            await self.ws.close(code=4409)
        except RuntimeError:  # the client had already closed
            pass

    async def dispatch(self, data: dict[str, Any]) -> None:
        kind, event_id = data["type"], data.get("event_id")
        handler = self.HANDLERS.get(kind)
        if handler is None:
            await self.error("unknown_event", f"unknown or unsupported client event {kind[:64]!r}", event_id=event_id)
            return
        await handler(self, data)

    async def _session_update(self, data: dict[str, Any]) -> None:
        session = data.get("session") or {}
        if not isinstance(session, dict):
            await self.error(
                "invalid_event", "session.update: `session` must be an object", event_id=data.get("event_id")
            )
            return
        modalities = session.get("output_modalities")
        if modalities is not None:
            if not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"} or not modalities:
                await self.error(
                    "invalid_value", "session.output_modalities: ['text'] or ['audio']", event_id=data.get("event_id")
                )
                return
            self.modalities = ("audio",) if "audio" in modalities else ("text",)
            if self.conversation is not None:  # replies are synthesised only for an audio session
                self.conversation.voice_reply = self.can_speak and "audio" in self.modalities
        audio_in = (session.get("audio") or {}).get("input") if isinstance(session.get("audio"), dict) else None
        if isinstance(audio_in, dict):
            problem = self._audio_input(audio_in)
            if problem is not None:
                await self.error("invalid_value", f"session.audio.input.{problem}", event_id=data.get("event_id"))
                return
        if "tools" in session or "tool_choice" in session:
            try:
                self.tools = _tool_use(
                    session.get("tools", [_realtime_tool(t) for t in self.tools.tools]),
                    session.get("tool_choice", self.tools.choice),
                )
            except ValueError as exc:
                await self.error("invalid_value", f"session.tools: {exc}", event_id=data.get("event_id"))
                return
            if self.conversation is not None:
                self.conversation.tools = self.tools
        ours = session.get(EXTENSION)
        if isinstance(ours, dict) and isinstance(ours.get("events"), bool):
            self.extension = ours["events"]
        if isinstance(ours, dict) and isinstance(ours.get("locale"), str) and self.conversation is not None:
            self.conversation.locale = ours["locale"][:16]  # for the crisis resources, as session.start's locale
        self.ignored = sorted({*self.ignored, *(k for k in IGNORED_SESSION_FIELDS if session.get(k))})
        await self.send("session.updated", session=self.session())

    def _audio_input(self, audio_in: dict[str, Any]) -> str | None:
        """Apply session.audio.input: its format (PCM16 at 24 kHz only) and turn detection, mapped to ours —
        server_vad: our VAD, ending the turn after `silence_duration_ms`; semantic_vad: Smart Turn, waiting up to
        about 4 / 1.2 / 0.8 s on an unfinished sentence for `eagerness` low / medium or auto / high (1.2: the server's
        PERSONA_TURN_MAX_SILENCE_MS); null: the client
        commits, and asks for each response. `create_response` and `interrupt_response` are honoured. What is wrong,
        or None."""
        fmt = audio_in.get("format")
        if fmt is not None and (
            not isinstance(fmt, dict) or fmt.get("type") != "audio/pcm" or fmt.get("rate", RATE) != RATE
        ):
            return f"format: only audio/pcm at {RATE} Hz is supported"
        if "turn_detection" not in audio_in:
            return None
        td = audio_in["turn_detection"]
        assert self.conversation is not None
        c = self.conversation
        if td is None or td is False:
            c.set_end_of_turn("manual")
            c.answer_speech, c.interrupt_on_speech, self.turn_detection = False, True, None
            return None
        kind = td.get("type") if isinstance(td, dict) else None
        if kind not in ("server_vad", "semantic_vad"):
            return "turn_detection: server_vad, semantic_vad or null"
        if kind == "server_vad":
            silence = td.get("silence_duration_ms")
            if silence is not None and (not isinstance(silence, int) or not 100 <= silence <= 5000):
                return "turn_detection.silence_duration_ms: 100 to 5000"
            c.set_end_of_turn("vad", silence)
            echo = {"type": kind, **({"silence_duration_ms": silence} if silence is not None else {})}
        else:
            eagerness = td.get("eagerness") or "auto"
            waits = {"low": 4000, "medium": None, "auto": None, "high": 800}  # None: the server's (1.2 s)
            if eagerness not in waits:
                return "turn_detection.eagerness: low, medium, high or auto"
            c.set_end_of_turn("smart_turn", waits[eagerness])
            echo = {"type": kind, "eagerness": eagerness}
        c.answer_speech = td.get("create_response") is not False
        c.interrupt_on_speech = td.get("interrupt_response") is not False
        self.turn_detection = echo | {"create_response": c.answer_speech, "interrupt_response": c.interrupt_on_speech}
        return None

    async def _item_create(self, data: dict[str, Any]) -> None:
        item = data.get("item") or {}
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            await self._call_output(item, data.get("event_id"))
            return
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type", "message") != "message" or not isinstance(content, list):
            await self.error(
                "unsupported_item",
                "conversation.item.create: only message and function_call_output items",
                event_id=data.get("event_id"),
            )
            return
        role = item.get("role")
        kinds = ("input_text", "output_text", "text")
        text = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in kinds)
        if role in ("system", "developer"):
            # never an instruction to the model (the agent profile writes the system prompt): acknowledged, not kept,
            # and listed among what this session ignored
            self.ignored = sorted({*self.ignored, f"{role} items"})
            await self._added(item, role, text)
            return
        if role == "assistant":  # the client replays earlier turns: history, with the user messages before them
            assert self.conversation is not None
            self.conversation.replay(text[:MAX_TEXT_CHARS])
            await self._added(item, role, text)
            return
        if role != "user":
            await self.error(
                "unsupported_item", f"conversation.item.create: role {role!r}", event_id=data.get("event_id")
            )
            return
        images = [p for p in content if isinstance(p, dict) and p.get("type") == "input_image"]
        if images and not await self._see(images, data.get("event_id")):
            return
        if images and not text.strip():  # a camera frame: read by the face model, joins the next turns' fusion
            await self._added(item, "user", "", [{"type": "input_image"}])
            return
        if not text.strip() or len(text) > MAX_TEXT_CHARS:
            await self.error(
                "invalid_value",
                f"a user message needs input_text of 1 to {MAX_TEXT_CHARS} characters",
                event_id=data.get("event_id"),
            )
            return
        assert self.conversation is not None
        item_id = str(item.get("id") or _id("item"))[:64]
        try:
            self.conversation.hold(item_id, text)
        except InboxFull as exc:
            await self.error("queue_full", str(exc), True, event_id=data.get("event_id"))
            return
        await self._added({**item, "id": item_id}, "user", text)

    async def _call_output(self, item: dict[str, Any], event_id: str | None) -> None:
        """A function call's output: kept for the paused turn, which goes on at the next response.create."""
        assert self.conversation is not None
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(call_id, str) or not isinstance(output, str) or len(output) > 2 * MAX_TEXT_CHARS:
            await self.error(
                "invalid_value",
                f"a function_call_output item needs a call_id and an output of at most {2 * MAX_TEXT_CHARS} "
                "characters, as strings",
                event_id=event_id,
            )
            return
        try:
            self.conversation.tool_result(call_id, output, take_up=False)
        except UnknownCall:
            await self.error(
                "unknown_call", f"no response waits on the output of call {call_id[:128]!r}", event_id=event_id
            )
            return
        added = {
            "id": str(item.get("id") or _id("item"))[:64],
            "object": "realtime.item",
            "type": "function_call_output",
            "status": "completed",
            "call_id": call_id,
            "output": output,
        }
        await self.send("conversation.item.added", item=added)
        await self.send("conversation.item.done", item=added)

    async def _see(self, parts: list[dict[str, Any]], event_id: str | None) -> bool:
        """`input_image` parts (data URLs of JPEG/PNG camera frames) to our face reading, answered by a
        persona_agent.perception (modality face) or .face_absent event. False: refused, with an error sent."""
        for part in parts:
            url = str(part.get("image_url") or "")
            head, _, b64 = url.partition(",")
            if not (head.startswith("data:image/") and head.endswith(";base64")):
                await self.error(
                    "invalid_image",
                    "input_image: image_url must be a data URL (data:image/jpeg;base64,...)",
                    event_id=event_id,
                )
                return False
            try:
                image = base64.b64decode(b64, validate=True)
            except binascii.Error as exc:
                await self.error("invalid_image", f"input_image: not valid base64: {exc}", event_id=event_id)
                return False
            if len(image) > MAX_IMAGE_BYTES:
                await self.error(
                    "image_too_large", f"an image may be at most {MAX_IMAGE_BYTES} bytes", event_id=event_id
                )
                return False
            assert self.conversation is not None
            try:
                FRAMES.labels("face").inc()
                self.conversation.submit_image(image)
            except ImageBackpressure as exc:
                await self.error("image_rate_limited", str(exc), True, event_id=event_id)
                return False
            except FaceUnavailable as exc:
                await self.error("face_unavailable", str(exc), event_id=event_id)
                return False
        return True

    async def _added(
        self, item: dict[str, Any], role: str, text: str, content: list[dict[str, Any]] | None = None
    ) -> str:
        """conversation.item.added and .done for a client's message item (its text, or `content`); its id."""
        item_id = str(item.get("id") or _id("item"))[:64]
        kind = {"user": "input_text", "assistant": "output_text"}.get(role, "input_text")
        added = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": role,
            "status": "completed",
            "content": content or [{"type": kind, "text": text}],
        }
        await self.send("conversation.item.added", item=added)
        await self.send("conversation.item.done", item=added)
        return item_id

    async def _response_create(self, data: dict[str, Any]) -> None:
        assert self.conversation is not None
        if not self.conversation.answerable:
            await self.error(
                "no_input",
                "response.create: there is no user message waiting for a reply (with turn detection on, speech is "
                "answered when it ends)",
                event_id=data.get("event_id"),
            )
            return
        if self.quota is not None and not await self.quota.take():
            await self.error(
                "rate_limited",
                f"this key may send {self.quota.key.rate_per_min} messages a minute",
                True,
                event_id=data.get("event_id"),
            )
            return
        try:
            self.conversation.answer()
        except InboxFull as exc:
            await self.error("queue_full", str(exc), True, event_id=data.get("event_id"))
            return
        self.spoken_items.clear()
        params = data.get("response")
        meta = params.get("metadata") if isinstance(params, dict) else None
        ok = isinstance(meta, dict) and len(meta) <= 16
        self.metadata.append(
            {str(k)[:64]: str(v)[:512] for k, v in meta.items()} if isinstance(meta, dict) and ok else None
        )

    async def _response_cancel(self, data: dict[str, Any]) -> None:
        assert self.conversation is not None
        if not self.conversation.cancel():
            # OpenAI's code: clients (Pipecat) take it as harmless
            await self.error(
                "response_cancel_not_active", "there is no response to cancel", event_id=data.get("event_id")
            )

    async def _audio_append(self, data: dict[str, Any]) -> None:
        assert self.conversation is not None
        try:
            raw = base64.b64decode(str(data.get("audio", "")), validate=True)
            if len(raw) % 2:
                raise InvalidAudio("PCM16 audio must be a whole number of 2-byte samples")
            samples = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
            ours = self._to_ours.resample_chunk(samples)
            self.received_ms += len(samples) / RATE * 1000
            FRAMES.labels("voice").inc()
            self.conversation.submit_audio((np.clip(ours, -1, 1) * 32767).astype(np.int16).tobytes())
        except (binascii.Error, InvalidAudio) as exc:
            await self.error("invalid_audio", f"input_audio_buffer.append: {exc}", event_id=data.get("event_id"))
        except AudioBackpressure as exc:
            await self.error("audio_overflow", str(exc), True, event_id=data.get("event_id"))
        except VoiceUnavailable as exc:
            await self.error("voice_unavailable", str(exc), event_id=data.get("event_id"))

    async def _audio_commit(self, data: dict[str, Any]) -> None:
        assert self.conversation is not None
        if self.conversation.voice is None:
            await self.error(
                "input_audio_buffer_commit_empty", "no audio has been appended", event_id=data.get("event_id")
            )
            return
        self.conversation.end_of_utterance()

    async def _audio_clear(self, data: dict[str, Any]) -> None:
        await self.send("input_audio_buffer.cleared")

    async def _item_delete(self, data: dict[str, Any]) -> None:
        """A user message not yet answered (typed, or spoken with turn detection off) can be taken back; what was
        answered is history (erased with the session, DELETE /v1/sessions/{id})."""
        assert self.conversation is not None
        item = str(data.get("item_id", ""))
        key = self.spoken_items.pop(item, item)
        if self.conversation.waiting.pop(key, None) is None:
            await self.error(
                "item_not_deletable",
                f"conversation.item.delete: {item[:64]!r} is not a user message waiting for a response; answered "
                "messages are history, erased with the session",
                event_id=data.get("event_id"),
            )
            return
        await self.send("conversation.item.deleted", item_id=item)

    async def _item_truncate(self, data: dict[str, Any]) -> None:
        """What the user heard of the last spoken reply: history keeps exactly that."""
        assert self.conversation is not None
        item = str(data.get("item_id", ""))
        rid = item.removeprefix(ITEM) if item.startswith(ITEM) else None
        ms = data.get("audio_end_ms")
        if rid is None or not isinstance(ms, int | float) or ms < 0:
            await self.error(
                "invalid_value",
                "conversation.item.truncate: item_id of the last spoken reply and audio_end_ms >= 0",
                event_id=data.get("event_id"),
            )
            return
        if not await self.conversation.audio_played(rid, float(ms), interrupted=True):
            await self.error(
                "invalid_value", "only the last spoken reply can be truncated", event_id=data.get("event_id")
            )

    HANDLERS = {
        "session.update": _session_update,
        "conversation.item.create": _item_create,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
        "input_audio_buffer.append": _audio_append,
        "input_audio_buffer.commit": _audio_commit,
        "input_audio_buffer.clear": _audio_clear,
        "conversation.item.truncate": _item_truncate,
        "conversation.item.delete": _item_delete,
    }
