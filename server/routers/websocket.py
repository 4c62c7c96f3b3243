"""`/v1/chat`: the WebSocket protocol (server/ws.py runs one connection). Refused before accept — HTTP 403, no model
touched — on a bad origin or key; a key's sessions beyond its limit are refused after accept with an error event."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from agent.metrics import ACTIVE_SESSIONS
from server.auth import SUBPROTOCOL, token_from
from server.limits import Quota
from server.ws import Connection

router = APIRouter()


@router.websocket("/v1/chat")
async def chat(ws: WebSocket) -> None:
    state = ws.app.state
    guard, limiter, idle_s = state.guard, state.limiter, state.settings.idle_timeout_s
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    key, reason = guard.authenticate(token_from(ws.headers, offered))
    if reason or not guard.origin_ok(ws.headers.get("origin"), ws.headers.get("host")):
        await ws.close(code=1008)
        return
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    agent = state.runtime.agent
    if key is None:
        await converse(Connection(agent, ws, idle_timeout_s=idle_s, guard=guard))
        return
    async with limiter.session(key) as admitted:
        conn = Connection(
            agent, ws, quota=Quota(key, limiter), idle_timeout_s=idle_s, tenant=key.principal, guard=guard, key=key
        )
        if not admitted:
            await conn.error(
                "too_many_sessions", f"this key may hold {key.max_sessions} sessions at once", retryable=True
            )
            await ws.close(code=1013)
            return
        await converse(conn)


async def converse(conn: Connection) -> None:
    ACTIVE_SESSIONS.inc()
    try:
        await conn.run()
    finally:
        ACTIVE_SESSIONS.dec()
