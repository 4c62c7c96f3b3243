"""A tiny protocol-level WebSocket client for tests (speaks only the published JSON events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class WS:
    def __init__(self, conn: websockets.ClientConnection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> WS:
        return cls(await websockets.connect(url, max_size=8 * 1024 * 1024))

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        await self.conn.send(json.dumps(event) if isinstance(event, dict) else event)

    async def recv(self, timeout: float = 120) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.conn.recv(), timeout))

    async def until(self, *types: str, timeout: float = 120) -> list[dict[str, Any]]:
        """Every event up to and including the first whose type is in `types`."""
        out = []
        while True:
            ev = await self.recv(timeout)
            out.append(ev)
            if ev["type"] in types:
                return out

    async def start(self, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "session.start", **fields})
        ev = await self.recv()
        assert ev["type"] == "session.started", ev
        return ev

    async def turn(self, text: str) -> list[dict[str, Any]]:
        await self.send({"type": "user.text", "text": text})
        return await self.until("response.done", "error")

    async def close(self) -> None:
        await self.conn.close()
