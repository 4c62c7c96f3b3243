"""Prometheus metrics: per-stage latency, turns, LLM tokens, errors by code, active sessions. Served at /metrics.
Labels never carry message content, user ids or keys."""
from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

STAGE_SECONDS = Histogram("persona_stage_seconds", "Time per pipeline stage of a user turn", ["stage"],
                          buckets=_BUCKETS, registry=REGISTRY)
TURNS = Counter("persona_turns_total", "User turns by outcome", ["outcome"], registry=REGISTRY)
LLM_TOKENS = Counter("persona_llm_tokens_total", "LLM tokens", ["kind"], registry=REGISTRY)
ERRORS = Counter("persona_errors_total", "Error events sent to clients, by code", ["code"], registry=REGISTRY)
ACTIVE_SESSIONS = Gauge("persona_active_sessions", "Open WebSocket sessions", registry=REGISTRY)
STORE_FAILURES = Counter("persona_store_failures_total", "Session saves that failed (the turn went on)",
                         registry=REGISTRY)
SAFETY = Counter("persona_safety_events_total", "Safety-layer actions", ["action"], registry=REGISTRY)
FRAMES = Counter("persona_media_frames_total", "Media received", ["modality"], registry=REGISTRY)


def observe_timings(timings_ms: dict[str, float | None]) -> None:
    for stage, ms in timings_ms.items():
        if ms is not None:
            STAGE_SECONDS.labels(stage).observe(ms / 1000)
TASKS = Gauge("persona_asyncio_tasks", "asyncio tasks alive in the server's event loop", registry=REGISTRY)


def watch_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Report the loop's live task count on every scrape (orphans show up as a count that never comes back down)."""
    TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
