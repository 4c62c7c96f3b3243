"""Fault injection against the real LLM engine: a proxy on loopback between a second server process and the
session's vLLM is stopped, made to fail, slowed and cut. The user's message is always kept, errors are typed with
`retryable`, transient failures before the first token are retried, and the session goes on afterwards."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ARTIFACTS
from tests.faultproxy import server_behind_proxy
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def faulty(live_server):
    with server_behind_proxy(live_server, ARTIFACTS / "faulty", PERSONA_LLM_TIMEOUT_S="4") as (srv, proxy):
        yield srv, proxy
        proxy.mode = "pass"


async def history_after(srv, sid: str) -> list[dict]:
    """The stored history, read over REST while the session stays live on its WebSocket (a second WebSocket
    resuming it would take it over: one writer per session)."""
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{srv.url}/v1/sessions/{sid}")
    r.raise_for_status()
    return [
        {"role": m["role"], "content": m["content"], **({"interrupted": "true"} if m["interrupted"] else {})}
        for m in r.json()["messages"]
    ]


async def test_llm_down_gives_retryable_error_and_keeps_the_message(faulty):
    srv, proxy = faulty
    ws = await WS.connect(srv.ws_url)
    sid = (await ws.start())["session_id"]
    proxy.mode, before = "down", proxy.requests
    events = await ws.turn("Are you there?")
    err = events[-1]
    assert err["type"] == "error" and err["code"] == "llm_unavailable" and err["retryable"]
    assert proxy.requests - before == 3  # one try and two retries with backoff
    proxy.mode = "pass"
    events = await ws.turn("Now?")
    assert events[-1]["type"] == "response.done" and events[-1]["text"]
    await ws.close()
    users = [m["content"] for m in await history_after(srv, sid) if m["role"] == "user"]
    assert users == ["Are you there?", "Now?"]


async def test_http_503_is_retried_then_reported(faulty):
    srv, proxy = faulty
    ws = await WS.connect(srv.ws_url)
    await ws.start()
    proxy.mode, before = "error", proxy.requests
    err = (await ws.turn("hello"))[-1]
    assert err["code"] == "llm_error" and err["retryable"] and "503" in err["message"]
    assert proxy.requests - before == 3
    proxy.mode = "pass"
    assert (await ws.turn("hello again"))[-1]["type"] == "response.done"
    await ws.close()


async def test_slow_llm_still_answers_and_a_stalled_one_times_out(faulty):
    srv, proxy = faulty
    ws = await WS.connect(srv.ws_url)
    await ws.start()
    proxy.mode, proxy.delay_s = "slow", 1.5
    t0 = time.monotonic()
    done = (await ws.turn("Tell me something nice."))[-1]
    assert done["type"] == "response.done" and time.monotonic() - t0 >= 1.5
    proxy.delay_s = 30  # beyond the 4 s client timeout
    err = (
        await ws.turn(
            "And now?",
        )
    )[-1]
    assert err["code"] == "llm_unavailable" and err["retryable"] and "Timeout" in err["message"]
    proxy.mode = "pass"
    assert (await ws.turn("Back?"))[-1]["type"] == "response.done"
    await ws.close()


async def test_stream_cut_mid_reply_keeps_the_partial_reply(faulty):
    srv, proxy = faulty
    ws = await WS.connect(srv.ws_url)
    sid = (await ws.start())["session_id"]
    proxy.mode, proxy.cut_after = "cut", 6000  # about 20 tokens of server-sent events
    events = await ws.turn("Please tell me a long story about a lighthouse keeper and the sea.")
    deltas = "".join(e["text"] for e in events if e["type"] == "response.delta")
    err = events[-1]
    assert err["type"] == "error" and err["retryable"], err
    assert deltas  # the user saw part of it: kept, marked interrupted, not retried (it would repeat itself)
    assert err["code"] == "llm_interrupted"
    hist = await history_after(srv, sid)
    assert hist[-1]["role"] == "assistant" and hist[-1]["content"] == deltas and hist[-1].get("interrupted") == "true"
    proxy.mode = "pass"
    assert (await ws.turn("Go on."))[-1]["type"] == "response.done"
    await ws.close()
