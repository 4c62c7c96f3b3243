"""The FastAPI app: `create_app` only wires — the guard, the rate limiter and the runtime on `app.state`, the edge
middleware, and one router per area (server/routers/). No pipeline logic lives here."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from agent import Runtime, cancel_and_wait, create_runtime
from agent.metrics import watch_tasks, worker_exited
from server.auth import Guard, KeyStore
from server.edge import Edge
from server.limits import open_limiter
from server.logs import DROP_QUERY_STRINGS, configure_logging
from server.routers import analysis, health, openai, sessions, websocket
from server.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    keys_path = settings.key_store_path()
    guard = Guard(
        KeyStore(keys_path) if settings.auth_required() or keys_path.exists() else None,
        settings.auth_required(),
        tuple(settings.allowed_origins),
        tuple(settings.allowed_hosts),
        settings.key_recheck_s,
    )
    agent_cfg = settings.agent_config()
    app = FastAPI(title="persona-agent", version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.guard = settings, guard
    app.state.limiter = open_limiter(agent_cfg.redis_url if agent_cfg.store == "redis" else None)
    app.add_middleware(Edge, guard=guard, body_limits=analysis.BODY_LIMITS)
    app.mount("/static", StaticFiles(directory=health.STATIC), name="static")
    app.middleware("http")(public_assets)
    for area in (health, sessions, analysis, openai, websocket):
        app.include_router(area.router)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load every model and start (or reach) the LLM; retention and the task sampler run beside the app."""
    settings: Settings = app.state.settings
    logging.getLogger("uvicorn.access").addFilter(DROP_QUERY_STRINGS)  # after uvicorn set its loggers up
    runtime = await create_runtime(settings.runtime_config())
    app.state.runtime = runtime
    tune_gc(settings.gc_freeze, settings.gc_thresholds)
    sampler = watch_tasks(asyncio.get_running_loop())
    background = [asyncio.create_task(purge_periodically(runtime), name="retention"), *([sampler] if sampler else [])]
    try:
        yield
    finally:
        await cancel_and_wait(*background)
        await app.state.limiter.aclose()
        await runtime.aclose()
        worker_exited()


async def public_assets(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The widget and client are loaded as module scripts by third-party pages: CORS on /static only."""
    response = await call_next(request)
    if request.url.path.startswith("/static/"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def purge_periodically(runtime: Runtime, every_s: float = 3600.0) -> None:
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


def app_from_env() -> FastAPI:
    """For `persona-agent serve --workers N`: each worker process reads the same settings from the environment."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
