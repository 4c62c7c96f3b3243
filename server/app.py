"""The FastAPI app: routes parse, call the agent, and stream back. No pipeline logic lives here."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
from pathlib import Path
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from agent import (
    ACTIVE_SESSIONS, LOCAL_TENANT, AnalysisBusy, AnalysisUnavailable, EndpointHealth, EngineStatus, ImageError, InvalidAudio, Runtime,
    SessionExport, UserExport, create_runtime, scrape_registry, watch_tasks, worker_exited,
)
from server.auth import SUBPROTOCOL, ApiKey, Guard, KeyStore, token_from
from server.edge import Edge, request_key
from server.limits import Quota, burst, face_cost, open_limiter, text_cost, voice_cost
from server.results import face_result, text_result, voice_result
from server.protocol import (
    MAX_AUDIO_UPLOAD_BYTES, MAX_AUDIO_UPLOAD_SECONDS, MAX_IMAGE_BYTES, AnalyzeFaceResponse, AnalyzeTextRequest, AnalyzeTextResponse, TextResult, VoiceResult,
    json_schema,
)
from server.logs import DROP_QUERY_STRINGS, configure_logging
from server.settings import Settings
from server.openai_compat import ChatCompletionRequest, Collected, TurnFailed, profile_of, respond, stream
from server.ws import Connection

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"


class ErrorDetail(BaseModel):
    detail: str


class Erased(BaseModel):
    erased: bool = True
    sessions: int  # sessions erased


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


def _binary_body() -> dict:
    """Routes that read the raw body (one file, streamed with a size cap; its format is sniffed) document it here."""
    return {"requestBody": {"required": True,
                            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


_ERR: dict[str, Any] = {"model": ErrorDetail, "description": "refused, with the reason in `detail`"}
_AUTH: dict[int | str, dict[str, Any]] = {401: _ERR, 403: _ERR, 429: _ERR}


async def _purge_periodically(runtime: Runtime, every_s: float = 3600.0) -> None:
    """Retention (PERSONA_RETENTION_DAYS): erase what has not been written for that long, at start and hourly."""
    while True:
        try:
            if n := await runtime.agent.purge_expired():
                log.info("retention: erased %d sessions", n)
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(every_s)


def tune_gc(freeze: bool, thresholds: tuple[int, int, int]) -> None:
    """Once the models are loaded: keep what start-up made out of every later collection, collect young objects less
    often (Settings.gc_freeze, gc_thresholds)."""
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*thresholds)
    log.info("garbage collector: %d start-up objects frozen, thresholds %s", gc.get_freeze_count(), thresholds)


def create_app(settings: Settings) -> FastAPI:
    keys_path = settings.key_store_path()
    guard = Guard(KeyStore(keys_path) if settings.auth_required() or keys_path.exists() else None,
                  settings.auth_required(), tuple(settings.allowed_origins), tuple(settings.allowed_hosts),
                  settings.key_recheck_s)
    agent_cfg = settings.agent_config()
    limiter = open_limiter(agent_cfg.redis_url if agent_cfg.store == "redis" else None)

    def caller(request: Request) -> ApiKey | None:
        """The key Edge checked before the body was read (None: auth is off and none was sent)."""
        return request_key(request.state)

    async def rated(key: ApiKey | None, cost: int = 1) -> str:
        if key is not None and cost > burst(key):
            raise HTTPException(status_code=429, detail=f"this request costs {cost} of the key's rate tokens, more than "
                                f"its burst of {burst(key)} ({key.rate_per_min} per minute): split it")
        if key is not None and not await limiter.take(key, cost):
            raise HTTPException(status_code=429, detail=f"rate limit: {key.rate_per_min} requests per minute for this "
                                f"key (this one costs {cost})")
        return key.principal if key is not None else LOCAL_TENANT

    def secret(request: Request) -> ApiKey | None:
        """Data, analysis and monitoring routes: a secret key (a publishable key may only hold conversations)."""
        key = caller(request)
        if key is not None and not key.secret:
            raise HTTPException(status_code=403, detail="a publishable key may only hold conversations (/v1/chat, "
                                "/v1/chat/completions); this route needs a secret key")
        return key

    async def require_key(request: Request) -> str:
        """REST data and analysis routes: a secret key, drawn on its rate. The caller's tenant."""
        return await rated(secret(request))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.getLogger("uvicorn.access").addFilter(DROP_QUERY_STRINGS)  # after uvicorn set its loggers up
        runtime = await create_runtime(settings.runtime_config())
        app.state.runtime = runtime
        tune_gc(settings.gc_freeze, settings.gc_thresholds)
        sampler = watch_tasks(asyncio.get_running_loop())
        background = [asyncio.create_task(_purge_periodically(runtime), name="retention"), *([sampler] if sampler else [])]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await limiter.aclose()
            await runtime.aclose()
            worker_exited()

    app = FastAPI(title="persona-agent", version="0.1.0", lifespan=lifespan)
    app.state.guard = guard
    app.add_middleware(Edge, guard=guard, body_limits={"/v1/analyze/voice": MAX_AUDIO_UPLOAD_BYTES + 1,
                                                       "/v1/analyze/face": MAX_IMAGE_BYTES + 1})
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def public_assets(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """The widget and client are loaded as module scripts by third-party pages: CORS on /static only."""
        response = await call_next(request)
        if request.url.path.startswith("/static/"):
            response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        """The demo page: chat, microphone, camera and live panels."""
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz", response_model=ReadyOut, responses={503: {"description": "the store does not answer",
                                                                  "model": ReadyOut}})
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: 200 while this process can take sessions (models loaded, store answers), also when the LLM is
        down or the store refuses writes (`degraded`: crisis replies need neither); 503 when the store does not
        answer. Liveness is /healthz. With auth on, only a secret key sees the details (endpoints, engine pid)."""
        r = await app.state.runtime.readiness()
        code = 200 if r.ready else 503
        key, _ = guard.authenticate(token_from(request.headers))
        if guard.require and (key is None or not key.secret):
            return JSONResponse({"status": r.status}, status_code=code)
        body = ReadyOut(status=r.status, store=r.store, store_ok=r.store_ok, store_writable=r.store_writable,
                        models=dict(r.models), llm_model=r.llm_model, llm=list(r.llm), engine=r.engine)
        return JSONResponse(body.model_dump(mode="json"), status_code=code)

    @app.get("/metrics", dependencies=[Depends(secret)], response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}, **_AUTH})
    async def metrics() -> Response:
        """Every worker's figures in one scrape (multiprocess mode with --workers N). With auth on, Prometheus sends a
        key (`authorization: {credentials: <key>}` in its scrape config, deploy/README.md); scrapes do not draw on
        the key's rate, so monitoring never eats into a client's turns."""
        return Response(generate_latest(scrape_registry()), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/sessions/{session_id}", response_model=SessionExport, responses={**_AUTH, 404: _ERR})
    async def get_session(session_id: str, tenant: str = Depends(require_key)) -> SessionExport:
        """One stored session of the caller's tenant: messages, persona, overrides, summary (read-only)."""
        data = await app.state.runtime.agent.export_session(session_id, tenant)
        if data is None:
            raise HTTPException(status_code=404, detail="no such session")
        return data

    @app.delete("/v1/sessions/{session_id}", response_model=Erased, responses={**_AUTH, 404: _ERR})
    async def delete_session(session_id: str, tenant: str = Depends(require_key)) -> Erased:
        """Erase one session of the caller's tenant: its messages, persona and overrides."""
        if not await app.state.runtime.agent.delete_session(session_id, tenant):
            raise HTTPException(status_code=404, detail="no such session")
        return Erased(sessions=1)

    @app.delete("/v1/users/{user_id}", response_model=Erased, responses={**_AUTH, 404: _ERR})
    async def delete_user(user_id: str, tenant: str = Depends(require_key)) -> Erased:
        """Erase a user of the caller's tenant: their persona and every session with their user_id."""
        n = await app.state.runtime.agent.delete_user(user_id, tenant)
        if n < 0:
            raise HTTPException(status_code=404, detail="no such user")
        return Erased(sessions=n)

    @app.get("/v1/users/{user_id}/export", response_model=UserExport, responses={**_AUTH, 404: _ERR})
    async def export_user(user_id: str, tenant: str = Depends(require_key)) -> UserExport:
        """Everything stored about a user of the caller's tenant, as JSON."""
        data = await app.state.runtime.agent.export_user(user_id, tenant)
        if data is None:
            raise HTTPException(status_code=404, detail="no such user")
        return data

    @app.get("/v1/schema")
    async def schema() -> dict:
        return json_schema()

    @app.post("/v1/analyze/text", response_model=AnalyzeTextResponse, responses={**_AUTH, 503: _ERR})
    async def analyze_text(req: AnalyzeTextRequest, request: Request) -> AnalyzeTextResponse:
        """Draws 1 rate token per 16 texts, and 1 more per text with `explain`."""
        await rated(secret(request), text_cost(req.texts, req.explain))
        try:
            results = await app.state.runtime.agent.analyze_text(req.texts, req.explain)
        except (AnalysisUnavailable, AnalysisBusy) as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return AnalyzeTextResponse(results=[TextResult(**text_result(a)) for a in results])

    @app.post("/v1/analyze/voice", response_model=VoiceResult, responses={**_AUTH, 413: _ERR, 422: _ERR, 503: _ERR},
              openapi_extra=_binary_body())
    async def analyze_voice(request: Request) -> VoiceResult:
        """Body: one audio file (WAV, FLAC, OGG, MP3, ...), decoded in memory and never stored. Draws 1 rate token
        per 10 s of audio."""
        key = secret(request)
        await rated(key)
        body = await _read_body(request, MAX_AUDIO_UPLOAD_BYTES, "audio")

        async def charge(seconds: float) -> None:
            await rated(key, voice_cost(seconds) - 1)  # the first token was drawn before the body was read

        try:
            result = await app.state.runtime.agent.analyze_voice(body, MAX_AUDIO_UPLOAD_SECONDS, charge)
        except InvalidAudio as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except (AnalysisUnavailable, AnalysisBusy) as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return VoiceResult(**voice_result("upload", result))

    @app.post("/v1/analyze/face", response_model=AnalyzeFaceResponse, responses={**_AUTH, 413: _ERR, 422: _ERR, 503: _ERR},
              openapi_extra=_binary_body())
    async def analyze_face(request: Request, crop: bool = False, explain: bool = False) -> AnalyzeFaceResponse:
        """Body: one JPEG or PNG, decoded in memory and never stored. `crop=true`: the image is one aligned face crop
        (as in FER-2013); `explain=true`: a 6x6 occlusion saliency grid per face (4 rate tokens instead of 1)."""
        await rated(secret(request), face_cost(explain))
        body = await _read_body(request, MAX_IMAGE_BYTES, "image")
        try:
            result = await app.state.runtime.agent.analyze_face(body, crop, explain)
        except ImageError as exc:
            raise HTTPException(status_code=413 if exc.code == "image_too_large" else 422, detail=f"{exc.code}: {exc}") from None
        except (AnalysisUnavailable, AnalysisBusy) as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return AnalyzeFaceResponse(**face_result(result))

    @app.post("/v1/chat/completions", responses={
        200: {"description": "a chat.completion (JSON), or with `stream: true` chat.completion.chunk server-sent events",
              "content": {"application/json": {}, "text/event-stream": {}}}, **_AUTH, 422: _ERR, 503: _ERR})
    async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
        """OpenAI-compatible chat completions through the same turn as the WebSocket; our readings in `persona_agent`.
        With a publishable key, `user` is honoured only with a `user_token` vouching for it (else the turn is
        anonymous)."""
        key = caller(request)
        tenant = await rated(key)
        user, _ = guard.verified_user(key, req.user, req.user_token)
        agent = app.state.runtime.agent
        try:
            history, text = req.split()
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        profile = profile_of(req.model, set(agent.pipeline.profiles))

        async def run(c: Collected) -> str:
            return (await agent.complete(history, text, c.emit, tenant=tenant, user_id=user, profile=profile,
                                         locale=req.locale)).id

        if req.stream:
            return StreamingResponse(stream(run, req.model), media_type="text/event-stream")
        try:
            return JSONResponse(await respond(run, req.model))
        except TurnFailed as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None

    @app.websocket("/v1/chat")
    async def chat(ws: WebSocket) -> None:
        """Refused before accept (HTTP 403, no model touched) on a bad origin or key."""
        offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        key, reason = guard.authenticate(token_from(ws.headers, offered))
        if reason or not guard.origin_ok(ws.headers.get("origin"), ws.headers.get("host")):
            await ws.close(code=1008)
            return
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        agent = app.state.runtime.agent
        if key is None:
            await _converse(Connection(agent, ws, idle_timeout_s=settings.idle_timeout_s, guard=guard))
            return
        async with limiter.session(key) as admitted:
            conn = Connection(agent, ws, quota=Quota(key, limiter), idle_timeout_s=settings.idle_timeout_s,
                              tenant=key.principal, guard=guard, key=key)
            if not admitted:
                await conn.error("too_many_sessions", f"this key may hold {key.max_sessions} sessions at once",
                                 retryable=True)
                await ws.close(code=1013)
                return
            await _converse(conn)

    return app


async def _converse(conn: Connection) -> None:
    ACTIVE_SESSIONS.inc()
    try:
        await conn.run()
    finally:
        ACTIVE_SESSIONS.dec()


async def _read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=f"{what} upload over {limit} bytes")
    if not body:
        raise HTTPException(status_code=422, detail=f"empty body: send one {what} file as the request body")
    return bytes(body)


def app_from_env() -> FastAPI:
    """For `persona-agent serve --workers N`: each worker process reads the same settings from the environment."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
