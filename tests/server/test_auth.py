"""The edge: API keys (hashed, never logged), origin allowlist, per-key session and rate limits, idle timeout,
/metrics. A second server process with --require-auth, talking to the session's vLLM."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness import live_server as launch
from harness import metric_sum
from tests.audio import chunks, espeak, silence
from tests.conftest import ARTIFACTS
from tests.keys import create_key
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def secured(live_server, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.sqlite3"

    def create(name: str, rate: int, sessions: int) -> str:
        return create_key(keys, name, "--rate", str(rate), "--sessions", str(sessions))

    tokens = {"main": create("main", 600, 1), "slow": create("slow", 6, 4), "voice": create("voice", 6, 4)}
    env = {
        "LLM_BASE_URL": f"{live_server.llm_url}/v1",
        "PERSONA_REQUIRE_AUTH": "true",
        "PERSONA_KEYS_PATH": str(keys),
        "PERSONA_ALLOWED_ORIGINS": '["https://widget.example"]',
        "PERSONA_IDLE_TIMEOUT_S": "3",
        "PERSONA_STORE": "memory",
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": "16",
        "PERSONA_LOG_LEVEL": "info",
    }
    # the readiness probe is public; everything under /v1 needs the key
    with launch(ARTIFACTS / "secured", env) as srv:
        yield srv, tokens


async def refused(url: str, **kw) -> int:
    with pytest.raises(InvalidStatus) as e:
        await websockets.connect(url, **kw)
    return e.value.response.status_code


async def test_websocket_needs_a_valid_key_and_an_allowed_origin(secured):
    srv, tokens = secured
    assert await refused(srv.ws_url) == 403
    assert await refused(srv.ws_url, additional_headers={"Authorization": "Bearer pk_not-a-real-key"}) == 403
    assert (
        await refused(
            srv.ws_url,
            additional_headers={"Authorization": f"Bearer {tokens['main']}", "Origin": "https://evil.example"},
        )
        == 403
    )
    metrics = httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {tokens['main']}"}).text
    assert "persona_active_sessions 0.0" in metrics  # nothing was let in

    # header key, allowed origin
    conn = await websockets.connect(
        srv.ws_url, additional_headers={"Authorization": f"Bearer {tokens['main']}", "Origin": "https://widget.example"}
    )
    ws = WS(conn)
    await ws.start()
    events = await ws.turn("Hello there")
    assert events[-1]["type"] == "response.done"
    await ws.close()

    # a browser: the key rides in the subprotocol list, the server answers persona.v1
    conn = await websockets.connect(srv.ws_url, subprotocols=["persona.v1", f"key.{tokens['main']}"])
    assert conn.subprotocol == "persona.v1"
    await conn.close()


async def no_sessions_left(srv, token: str, timeout: float = 10.0) -> None:
    """Wait until the server has let go of every session: a closed connection frees its key's slot when the server
    has seen the close, which under load can come after the client's next connect (the limit then answers a
    retryable too_many_sessions, as it should)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            metrics = (await client.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {token}"})).text
            if "persona_active_sessions" in metrics and metric_sum(metrics, "persona_active_sessions") == 0:
                return
            assert asyncio.get_running_loop().time() < deadline, "sessions still held"
            await asyncio.sleep(0.05)


async def test_session_and_rate_limits_per_key(secured):
    srv, tokens = secured
    hdr = {"Authorization": f"Bearer {tokens['main']}"}
    await no_sessions_left(srv, tokens["main"])  # the previous test's connections on this key
    first = WS(await websockets.connect(srv.ws_url, additional_headers=hdr))
    await first.start()
    second = WS(await websockets.connect(srv.ws_url, additional_headers=hdr))  # max_sessions = 1
    ev = await second.recv()
    assert ev["type"] == "error" and ev["code"] == "too_many_sessions" and ev["retryable"]
    await first.close()
    await second.close()

    slow = WS(await websockets.connect(srv.ws_url, additional_headers={"X-API-Key": tokens["slow"]}))  # 6/min, burst 1
    await slow.start()
    await slow.send({"type": "user.text", "text": "one"})
    await slow.send({"type": "user.text", "text": "two"})
    events = await slow.until("response.done")
    limited = [e for e in events if e["type"] == "error"]
    if not limited:  # the error may come after the first reply
        limited = [await slow.recv()]
    assert limited[0]["code"] == "rate_limited" and limited[0]["retryable"]
    await slow.close()


async def test_spoken_turns_count_against_the_rate(secured):
    srv, tokens = secured
    ws = WS(await websockets.connect(srv.ws_url, additional_headers={"X-API-Key": tokens["voice"]}))  # 6/min, burst 1
    await ws.start(consent={"voice": True})
    assert (await ws.turn("one"))[-1]["type"] == "response.done"  # the key's one turn of burst
    for frame in chunks(np.concatenate([silence(0.3), espeak("Hello, can you hear me now?"), silence(0.3)])):
        await ws.send(frame)  # PCM16 frames, as a browser sends them
    await ws.send({"type": "user.audio.end"})
    events = await ws.until("error", "response.done", timeout=60)
    final = next((e for e in events if e["type"] == "transcript" and e["final"]), None)
    assert final is not None, events
    assert final["text"]  # what the user said is kept in the transcript event
    assert events[-1]["type"] == "error" and events[-1]["code"] == "rate_limited" and events[-1]["retryable"]
    assert "spoken" in events[-1]["message"]
    await ws.close()


async def test_idle_sessions_are_closed(secured):
    srv, tokens = secured
    await no_sessions_left(srv, tokens["main"])
    ws = WS(await websockets.connect(srv.ws_url, additional_headers={"Authorization": f"Bearer {tokens['main']}"}))
    await ws.start()
    ev = await ws.recv(timeout=10)
    assert ev["type"] == "error" and ev["code"] == "idle_timeout"
    with pytest.raises(ConnectionClosed):
        await ws.recv(timeout=5)


def test_rest_needs_the_key_and_metrics_report_stages(secured):
    srv, tokens = secured
    r = httpx.post(f"{srv.url}/v1/analyze/text", json={"texts": ["hi"]})
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    r = httpx.post(f"{srv.url}/v1/analyze/text", json={"texts": ["hi"]}, headers={"X-API-Key": tokens["main"]})
    assert r.status_code == 200
    assert httpx.get(f"{srv.url}/metrics").status_code == 401
    text = httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {tokens['main']}"}).text
    assert 'persona_stage_seconds_count{stage="perception"}' in text and "persona_errors_total{code=" in text
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_keys_are_never_logged(secured):
    srv, tokens = secured
    log = (ARTIFACTS / "secured" / "server.log").read_text()
    assert all(t not in log for t in tokens.values())
    assert "Hello there" not in log  # nor message content
