"""The first thing every request meets, before routing and before its body is read: the Host allow-list, the browser
Origin, the API key, and a cap on the body's size. A pure ASGI middleware, so a refused request costs a header parse:
no body is read or parsed for a request without a valid key (an unauthenticated 200 MB JSON post is answered 401
from its headers), and a body past its cap is cut off at the cap (413), whatever Content-Length claimed."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import ApiKey, Guard, token_from

MAX_JSON_BODY_BYTES = 4 * 1024 * 1024  # any JSON route (256 texts of 8,000 characters fit with room to spare)
PUBLIC_PATHS = ("/v1/schema",)


class BodyTooLarge(HTTPException):
    """Raised from the body's stream inside the route: FastAPI passes an HTTPException through as it is (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body over {limit} bytes")


async def _refuse(send: Send, status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Edge:
    """Host, origin, key and body size, checked in that order. The key found is left in `scope["state"]["key"]`
    (None when auth is off and none was sent) for the routes' dependencies, which check its scope and rate."""

    def __init__(self, app: ASGIApp, guard: Guard, body_limits: dict[str, int]) -> None:
        self.app, self.guard, self.body_limits = app, guard, body_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.guard.host_ok(headers.get("host")):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _refuse(send, 421, "this server does not answer for that Host (PERSONA_ALLOWED_HOSTS)")
            return
        path: str = scope["path"]
        if scope["type"] == "websocket" or not (path.startswith("/v1/") or path == "/metrics") or path in PUBLIC_PATHS:
            await self.app(scope, receive, send)  # WebSocket auth runs in its route, before accept
            return
        if not self.guard.origin_ok(headers.get("origin"), headers.get("host")):
            await _refuse(send, 403, "origin not allowed")
            return
        key, reason = self.guard.authenticate(token_from(headers))
        if reason:
            await _refuse(send, 401, reason, ((b"www-authenticate", b"Bearer"),))
            return
        scope.setdefault("state", {})["key"] = key
        limit = self.body_limits.get(path, MAX_JSON_BODY_BYTES)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, f"request body over {limit} bytes")
            return
        await self._capped(scope, receive, send, limit)

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0

        async def capped_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return msg

        await self.app(scope, capped_receive, send)


def request_key(state: Any) -> ApiKey | None:
    """The key Edge found for this request (None: auth is off and none was sent)."""
    return getattr(state, "key", None)
