"""The WebSocket routes: `/v1/chat`, our protocol (server/ws.py runs one connection), and `/v1/realtime`, OpenAI's
Realtime API over the same conversation (server/realtime.py). Both are refused before accept — HTTP 403, no model
touched — on a bad origin or key; a key's sessions beyond its limit are refused after accept with an error event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from fastapi import APIRouter, WebSocket

from agent.metrics import ACTIVE_SESSIONS
from server.auth import REALTIME_SUBPROTOCOL, SUBPROTOCOL, ApiKey, token_from
from server.limits import Quota
from server.openai_compat import profile_of
from server.realtime import RealtimeConnection
from server.ws import Connection

router = APIRouter()


class Runs(Protocol):
    async def run(self) -> None: ...

    async def error(self, code: str, message: str, retryable: bool = False) -> None: ...


async def accepted(ws: WebSocket, subprotocol: str) -> tuple[bool, ApiKey | None]:
    """Check the origin and the key before accepting (offered as a header or a subprotocol); (accepted, the key)."""
    state = ws.app.state
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    key, reason = state.guard.authenticate(token_from(ws.headers, offered))
    if reason or not state.guard.origin_ok(ws.headers.get("origin"), ws.headers.get("host")):
        await ws.close(code=1008)
        return False, None
    await ws.accept(subprotocol=subprotocol if subprotocol in offered else None)
    return True, key


async def held(ws: WebSocket, key: ApiKey | None, connect: Callable[[Quota | None], Runs]) -> None:
    """Run the connection in one of the key's session slots (refused with an error event past its limit)."""
    if key is None:
        await counted(connect(None).run())
        return
    async with ws.app.state.limiter.session(key) as admitted:
        conn = connect(Quota(key, ws.app.state.limiter))
        if not admitted:
            await conn.error("too_many_sessions", f"this key may hold {key.max_sessions} sessions at once", True)
            await ws.close(code=1013)
            return
        await counted(conn.run())


async def counted(run: Awaitable[None]) -> None:
    ACTIVE_SESSIONS.inc()
    try:
        await run
    finally:
        ACTIVE_SESSIONS.dec()


@router.websocket("/v1/chat")
async def chat(ws: WebSocket) -> None:
    ok, key = await accepted(ws, SUBPROTOCOL)
    if not ok:
        return
    state = ws.app.state
    agent, guard, idle_s = state.runtime.agent, state.guard, state.settings.idle_timeout_s
    tenant = key.principal if key is not None else None

    def connect(quota: Quota | None) -> Connection:
        if key is None or tenant is None:
            return Connection(agent, ws, idle_timeout_s=idle_s, guard=guard)
        return Connection(agent, ws, quota=quota, idle_timeout_s=idle_s, tenant=tenant, guard=guard, key=key)

    await held(ws, key, connect)


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket, model: str = "persona-agent") -> None:
    """OpenAI's Realtime API (GA events): `model` picks the agent profile (`persona-agent`, `persona-agent:companion`)."""
    ok, key = await accepted(ws, REALTIME_SUBPROTOCOL)
    if not ok:
        return
    state = ws.app.state
    agent = state.runtime.agent
    profile = profile_of(model, agent.profile_names)

    def connect(quota: Quota | None) -> RealtimeConnection:
        tenant = {"tenant": key.principal} if key is not None else {}
        return RealtimeConnection(agent, ws, profile, quota, idle_timeout_s=state.settings.idle_timeout_s, **tenant)

    await held(ws, key, connect)
