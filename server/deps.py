"""What every route may depend on, read from `app.state` (set once by `create_app`): the runtime, the guard, the
rate limiter, and the caller's key — checked by `Edge` before any body was read — with its tenant and scope."""

from __future__ import annotations

from typing import cast

from fastapi import HTTPException, Request
from pydantic import BaseModel

from agent import Agent
from agent.sessions import LOCAL_TENANT
from server.auth import ApiKey, Guard
from server.edge import request_key
from server.limits import Limiter, burst


class ErrorDetail(BaseModel):
    detail: str


ERR: dict[str, object] = {"model": ErrorDetail, "description": "refused, with the reason in `detail`"}
AUTH: dict[int | str, dict[str, object]] = {401: ERR, 403: ERR, 429: ERR}


def agent(request: Request) -> Agent:
    return cast(Agent, request.app.state.runtime.agent)


def guard(request: Request) -> Guard:
    return cast(Guard, request.app.state.guard)


def limiter(request: Request) -> Limiter:
    return cast(Limiter, request.app.state.limiter)


def caller(request: Request) -> ApiKey | None:
    """The key Edge checked before the body was read (None: auth is off and none was sent)."""
    return request_key(request.state)


async def rated(request: Request, key: ApiKey | None, cost: int = 1) -> str:
    """Draw `cost` of the key's rate tokens, or refuse with 429. The caller's tenant."""
    if key is not None and cost > burst(key):
        raise HTTPException(
            status_code=429,
            detail=f"this request costs {cost} of the key's rate tokens, more than "
            f"its burst of {burst(key)} ({key.rate_per_min} per minute): split it",
        )
    if key is not None and not await limiter(request).take(key, cost):
        raise HTTPException(
            status_code=429,
            detail=f"rate limit: {key.rate_per_min} requests per minute for this key (this one costs {cost})",
        )
    return key.principal if key is not None else LOCAL_TENANT


def secret(request: Request) -> ApiKey | None:
    """Data, analysis and monitoring routes: a secret key (a publishable key may only hold conversations)."""
    key = caller(request)
    if key is not None and not key.secret:
        raise HTTPException(
            status_code=403,
            detail="a publishable key may only hold conversations (/v1/chat, "
            "/v1/chat/completions); this route needs a secret key",
        )
    return key


async def require_key(request: Request) -> str:
    """REST data and analysis routes: a secret key, drawn on its rate. The caller's tenant."""
    return await rated(request, secret(request))
