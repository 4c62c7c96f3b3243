"""A small Python client for the persona-agent WebSocket protocol. It depends only on `websockets` and speaks only
the published events (GET /v1/schema); nothing here imports the backend.

    async with PersonaClient.connect("ws://127.0.0.1:8000/v1/chat", profile="companion") as c:
        reply = await c.ask("I finally finished my thesis!")
        print(reply.text, reply.persona["dominant_emotion"])
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from persona_client.tokens import user_token

__all__ = ["PersonaClient", "Reply", "ServerError", "user_token"]


class ServerError(RuntimeError):
    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(f"{event['code']}: {event['message']}")
        self.code, self.retryable = event["code"], event.get("retryable", False)


@dataclass
class Reply:
    text: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def first(self, type_: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["type"] == type_), None)

    @property
    def persona(self) -> dict[str, Any] | None:
        e = self.first("persona")
        return e["state"] if e else None

    @property
    def explanation(self) -> dict[str, Any] | None:
        e = self.first("response.done")
        return e["explanation"] if e else None

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The response.tool_call events: functions the model called (answer them with PersonaClient.tool_results)."""
        return [e for e in self.events if e["type"] == "response.tool_call"]


class PersonaClient:
    def __init__(self, ws: Any, session: dict[str, Any]) -> None:
        self.ws, self.session = ws, session

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        key: str | None = None,
        profile: str | None = None,
        user_id: str | None = None,
        resume: str | None = None,
        voice: bool = False,
        face: bool = False,
        user_token: str | None = None,
        resume_token: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> AsyncIterator[PersonaClient]:
        """With a publishable key, `user_token` (see user_token()) vouches for `user_id`, and resuming needs the
        session's `resume_token` (client.session["resume_token"] of the session.started it answered). `tools`: the
        functions the model may call, in OpenAI's shape ({"type": "function", "function": {...}})."""
        import websockets

        headers = {"Authorization": f"Bearer {key}"} if key else None
        async with websockets.connect(url, additional_headers=headers, max_size=8 * 1024 * 1024) as ws:
            start: dict[str, Any] = {"type": "session.start", "consent": {"text": True, "voice": voice, "face": face}}
            start.update(
                {
                    k: v
                    for k, v in (
                        ("profile", profile),
                        ("user_id", user_id),
                        ("resume", resume),
                        ("user_token", user_token),
                        ("resume_token", resume_token),
                        ("tools", tools),
                        ("tool_choice", tool_choice),
                    )
                    if v
                }
            )
            await ws.send(json.dumps(start))
            ev = json.loads(await ws.recv())
            if ev["type"] == "error":
                raise ServerError(ev)
            yield cls(ws, ev)

    @property
    def session_id(self) -> str:
        return str(self.session["session_id"])

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self, timeout: float = 300) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return event

    async def events(self, timeout: float = 300) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.recv(timeout)

    async def ask(self, text: str, explain: bool = False, on_delta: Any = None) -> Reply:
        """Send one message and collect its events up to the reply; raises ServerError on an error event. A reply
        that called tools ends with finish_reason "tool_calls" (Reply.tool_calls): answer with tool_results()."""
        await self.send({"type": "user.text", "text": text, "explain": explain})
        return await self._reply(on_delta)

    async def tool_results(self, outputs: dict[str, str], on_delta: Any = None) -> Reply:
        """Send the output of each call (call_id -> text) and collect the reply they continue."""
        for call_id, output in outputs.items():
            await self.send({"type": "tool.result", "call_id": call_id, "output": output})
        return await self._reply(on_delta)

    async def _reply(self, on_delta: Any) -> Reply:
        reply = Reply("")
        async for ev in self.events():
            reply.events.append(ev)
            if ev["type"] == "response.delta" and on_delta is not None:
                on_delta(ev["text"])
            if ev["type"] in ("response.done", "response.cancelled", "response.interrupted"):
                reply.text = ev["text"]
                return reply
            if ev["type"] == "error":
                raise ServerError(ev)
        raise AssertionError("unreachable")

    async def send_audio(self, pcm16: bytes) -> None:
        """PCM16 little-endian mono 16 kHz samples (needs voice=True at connect)."""
        await self.ws.send(pcm16)

    async def end_audio(self) -> None:
        await self.send({"type": "user.audio.end"})

    async def send_image(self, jpeg_or_png: bytes, explain: bool = False) -> None:
        """One camera frame (needs face=True at connect); answered by a `perception` or `face.absent` event."""
        await self.send({"type": "user.image", "image": base64.b64encode(jpeg_or_png).decode(), "explain": explain})

    async def cancel(self) -> None:
        await self.send({"type": "response.cancel"})

    async def override(self, **controls: float | str) -> dict[str, Any]:
        await self.send({"type": "controls.override", "controls": controls})
        return await self.recv()
