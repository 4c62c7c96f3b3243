"""Sessions outlive connections and processes: a returning user_id gets their persona back; a second server process
on the same SQLite store (a restart, or another worker) resumes a session with its history and persona."""

from __future__ import annotations

import uuid

import pytest

from harness import live_server
from tests.conftest import ARTIFACTS, STORE
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


async def test_returning_user_gets_their_persona_back(live_server):
    user = f"user-{uuid.uuid4().hex[:8]}"
    ws = await WS.connect(live_server.ws_url)
    first = await ws.start(user_id=user)
    assert first["persona"] is None  # nobody we know yet
    events = await ws.turn("I feel so sad and lonely since my dog died.")
    state = next(e for e in events if e["type"] == "persona")["state"]
    assert state["dominant_emotion"] == "sadness" and state["turns"] == 1
    await ws.close()

    ws = await WS.connect(live_server.ws_url)
    again = await ws.start(user_id=user)
    assert again["session_id"] != first["session_id"] and not again["resumed"]
    carried = again["persona"]
    assert carried["dominant_emotion"] == "sadness" and carried["turns"] == 1
    assert carried["valence"] == pytest.approx(state["valence"], abs=0.02)  # decayed by seconds only
    events = await ws.turn("Thanks for listening.")
    assert next(e for e in events if e["type"] == "persona")["state"]["turns"] == 2
    await ws.close()

    ws = await WS.connect(live_server.ws_url)
    stranger = await ws.start(user_id=f"other-{uuid.uuid4().hex[:8]}")
    assert stranger["persona"] is None
    await ws.close()


async def test_second_process_resumes_a_session_from_the_store(live_server):
    ws = await WS.connect(live_server.ws_url)
    sid = (await ws.start(profile="companion"))["session_id"]
    await ws.turn("My name is Ada and I am nervous about my exam.")
    await ws.turn("It is on Friday.")
    await ws.close()
    # Another worker: same store file, the first server's vLLM as its LLM (no second engine to boot).
    env = {
        "LLM_BASE_URL": f"{live_server.llm_url}/v1",
        "PERSONA_STORE_PATH": str(STORE),
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": "32",
    }
    with live_server_ctx(env) as other:
        ws = await WS.connect(other.ws_url)
        started = await ws.start(resume=sid)
        assert started["resumed"] and started["profile"] == "companion"
        users = [m["content"] for m in started["history"] if m["role"] == "user"]
        assert users == ["My name is Ada and I am nervous about my exam.", "It is on Friday."]
        assert len(started["history"]) == 4 and started["persona"]["turns"] == 2
        events = await ws.turn("What was my name again?")
        assert events[-1]["type"] == "response.done"
        await ws.close()
    # and back on the first worker, the turn taken on the second is there too
    ws = await WS.connect(live_server.ws_url)
    started = await ws.start(resume=sid)
    assert [m["content"] for m in started["history"] if m["role"] == "user"][-1] == "What was my name again?"
    assert len(started["history"]) == 6
    await ws.close()


def live_server_ctx(env):
    return live_server(ARTIFACTS / "worker2", env)


def _tasks(url: str) -> float:
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("persona_asyncio_tasks "))


async def test_no_orphans_after_disconnects_and_vllm_stops_generating(live_server):
    import asyncio
    import time

    baseline = _tasks(live_server.url)
    for _ in range(3):  # plain sessions with a turn each
        ws = await WS.connect(live_server.ws_url)
        await ws.start()
        await ws.turn("hi")
        await ws.close()
    # a client that vanishes mid-reply
    ws = await WS.connect(live_server.ws_url)
    await ws.start()
    await ws.send({"type": "user.text", "text": "Tell me a long story about the sea, please."})
    await ws.until("response.delta")
    await ws.conn.close()
    deadline = time.monotonic() + 5
    while live_server.vllm_metric("vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert live_server.vllm_metric("vllm:num_requests_running") == 0  # the upstream request was aborted
    deadline = time.monotonic() + 5
    while _tasks(live_server.url) > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    after = _tasks(live_server.url)
    print(f"asyncio tasks: {baseline:.0f} before, {after:.0f} after 4 sessions")
    assert after <= baseline
