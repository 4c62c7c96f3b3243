"""Prometheus metrics: per-stage latency, turns, LLM tokens, errors by code, active sessions. Served at /metrics.
Labels never carry message content, user ids or keys.

With several worker processes (`serve --workers N` sets PROMETHEUS_MULTIPROC_DIR before they start, as
prometheus_client's multiprocess mode needs) every worker writes its values to files there and a scrape of any one
worker reads them all: counters and histograms summed, gauges summed over live workers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))  # prometheus_client's own switch, read at its import
REGISTRY = CollectorRegistry(auto_describe=True)
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

STAGE_SECONDS = Histogram(
    "persona_stage_seconds", "Time per pipeline stage of a user turn", ["stage"], buckets=_BUCKETS, registry=REGISTRY
)
TURNS = Counter("persona_turns_total", "User turns by outcome", ["outcome"], registry=REGISTRY)
LLM_TOKENS = Counter("persona_llm_tokens_total", "LLM tokens", ["kind"], registry=REGISTRY)
ERRORS = Counter("persona_errors_total", "Error events sent to clients, by code", ["code"], registry=REGISTRY)
ACTIVE_SESSIONS = Gauge(
    "persona_active_sessions", "Open WebSocket sessions", registry=REGISTRY, multiprocess_mode="livesum"
)
STORE_FAILURES = Counter(
    "persona_store_failures_total", "Session saves that failed (the turn went on)", registry=REGISTRY
)
SAFETY = Counter("persona_safety_events_total", "Safety-layer actions", ["action"], registry=REGISTRY)
SPECULATION = Counter(
    "persona_speculative_turns_total",
    "Spoken turns started at a pause before the end of the turn was decided, by outcome (started, released, discarded)",
    ["outcome"],
    registry=REGISTRY,
)
FRAMES = Counter("persona_media_frames_total", "Media received", ["modality"], registry=REGISTRY)
ENGINE_RESTARTS = Counter(
    "persona_llm_engine_restarts_total", "Times the embedded vLLM died and was restarted", registry=REGISTRY
)


def observe_timings(timings_ms: Mapping[str, float | None]) -> None:
    for stage, ms in timings_ms.items():
        if ms is not None:
            STAGE_SECONDS.labels(stage).observe(ms / 1000)


TASKS = Gauge(
    "persona_asyncio_tasks",
    "asyncio tasks alive in the server's event loop(s)",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)


def watch_tasks(loop: asyncio.AbstractEventLoop, every_s: float = 5.0) -> asyncio.Task[None] | None:
    """Report the loop's live task count (orphans show up as a count that never comes back down): on every scrape in
    one process; every few seconds into the shared files with several workers. The task to cancel, if one runs."""
    if not MULTIPROCESS:
        TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
        return None

    async def sample() -> None:
        while True:
            TASKS.set(len(asyncio.all_tasks(loop)))
            await asyncio.sleep(every_s)

    return loop.create_task(sample(), name="metrics-tasks")


def scrape_registry() -> CollectorRegistry:
    """The registry a /metrics scrape reads: this process's, or every worker's files in multiprocess mode."""
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client: untyped
    return registry


def worker_exited() -> None:
    """A worker's live gauges leave the sum when it stops (multiprocess mode)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
