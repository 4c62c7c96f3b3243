"""Liveness, readiness, metrics, the demo page and the protocol schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from agent import EndpointHealth
from agent.llm import EngineStatus
from agent.metrics import scrape_registry
from server.auth import token_from
from server.deps import AUTH, guard, secret
from server.protocol import json_schema

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter()


class ReadyOut(BaseModel):
    """agent.Readiness at the edge: its fields, and the status it derives."""

    status: Literal["ready", "degraded", "not_ready"]
    store: str
    store_ok: bool
    store_writable: bool  # a write was tried (and rolled back): False means degraded, sessions kept in memory
    models: dict[str, str]
    llm_model: str
    llm: list[EndpointHealth]
    engine: EngineStatus | None  # the embedded vLLM this process supervises (null with an external LLM)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The demo page: chat, microphone, camera and live panels."""
    return FileResponse(STATIC / "index.html")


@router.get("/healthz")
async def healthz() -> dict[str, object]:
    return {"status": "ok", "pid": os.getpid()}


@router.get(
    "/readyz", response_model=ReadyOut, responses={503: {"description": "the store does not answer", "model": ReadyOut}}
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 while this process can take sessions (models loaded, store answers), also when the LLM is
    down or the store refuses writes (`degraded`: crisis replies need neither); 503 when the store does not
    answer. Liveness is /healthz. With auth on, only a secret key sees the details (endpoints, engine pid)."""
    r = await request.app.state.runtime.readiness()
    code = 200 if r.ready else 503
    g = guard(request)
    key, _ = g.authenticate(token_from(request.headers))
    if g.require and (key is None or not key.secret):
        return JSONResponse({"status": r.status}, status_code=code)
    body = ReadyOut(
        status=r.status,
        store=r.store,
        store_ok=r.store_ok,
        store_writable=r.store_writable,
        models=dict(r.models),
        llm_model=r.llm_model,
        llm=list(r.llm),
        engine=r.engine,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=code)


@router.get(
    "/metrics",
    dependencies=[Depends(secret)],
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}, **AUTH},
)
async def metrics() -> Response:
    """Every worker's figures in one scrape (multiprocess mode with --workers N). With auth on, Prometheus sends a
    key (`authorization: {credentials: <key>}` in its scrape config, deploy/README.md); scrapes do not draw on
    the key's rate, so monitoring never eats into a client's turns."""
    return Response(generate_latest(scrape_registry()), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/schema")
async def schema() -> dict[str, Any]:
    return json_schema()
