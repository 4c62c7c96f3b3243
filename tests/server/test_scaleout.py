"""Scale-out on a real Redis: two server processes (workers) share sessions through Redis and the session's vLLM;
a conversation moves between them mid-way, survives one being killed mid-reply, and `serve --workers 2` spreads
connections over two processes behind one port."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from urllib.parse import urlparse

import httpx
import pytest
import websockets

from harness import live_server as launch
from harness import metric_sum
from tests.conftest import ARTIFACTS
from tests.faultproxy import FaultProxy
from tests.keys import create_key
from tests.redisserver import RedisServer
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as r:
        yield r


def worker_env(live_server, redis) -> dict[str, str]:
    return {
        "LLM_BASE_URL": f"{live_server.llm_url}/v1",
        "PERSONA_STORE": "redis",
        "PERSONA_REDIS_URL": redis.url,
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": "48",
        "PERSONA_VOICE_ENABLED": "false",
    }


async def test_session_moves_between_workers_and_survives_a_killed_one(live_server, redis):
    # worker B reaches the same vLLM through a proxy that paces its stream (a slower GPU server: one token every
    # 0.4 s), so B is still mid-reply when it is killed, however short the reply and however loaded the machine
    # (with the direct engine a 14-token reply reached the client before the SIGKILL landed)
    env = worker_env(live_server, redis)
    u = urlparse(live_server.llm_url)
    with FaultProxy(u.hostname, u.port) as paced, launch(ARTIFACTS / "worker-a", env) as a:
        with launch(ARTIFACTS / "worker-b", env | {"LLM_BASE_URL": paced.url}) as b:
            ws = await WS.connect(a.ws_url)
            sid = (await ws.start(profile="companion", user_id="ada"))["session_id"]
            first = await ws.turn("I'm Ada. I feel anxious about moving to a new city.")
            persona_a = next(e for e in first if e["type"] == "persona")["state"]
            await ws.close()

            ws = await WS.connect(b.ws_url)  # the load balancer sent the reconnect elsewhere
            started = await ws.start(resume=sid)
            assert started["resumed"] and [m["role"] for m in started["history"]] == ["user", "assistant"]
            assert started["persona"]["dominant_emotion"] == persona_a["dominant_emotion"]
            assert started["persona"]["turns"] == 1
            second = await ws.turn("The movers come on Monday.")
            assert next(e for e in second if e["type"] == "persona")["state"]["turns"] == 2
            paced.mode, paced.pace_s = "pace", 0.4
            await ws.send({"type": "user.text", "text": "Tell me a long story to calm me down, please."})
            await ws.until("response.delta")
            os.kill(b.pid, signal.SIGKILL)  # worker B dies mid-reply
            with pytest.raises(websockets.ConnectionClosed):
                await ws.until("response.done", timeout=10)

            ws = await WS.connect(a.ws_url)  # the client retries on a live worker
            started = await ws.start(resume=sid)
            users = [m["content"] for m in started["history"] if m["role"] == "user"]
            assert users[-1] == "Tell me a long story to calm me down, please."  # stored before the LLM was called
            assert len(users) == 3 and started["persona"]["turns"] == 3
            done = (await ws.turn("Are you still there?"))[-1]
            assert done["type"] == "response.done"
            await ws.close()


async def test_one_writer_across_workers_the_newest_takes_over(live_server, redis):
    """A reconnect that lands on another worker while the session is live on the first: the first lets go (saves,
    tells its client, releases the Redis lease) before the second loads the record, so every message is kept once."""
    env = worker_env(live_server, redis) | {"PERSONA_LLM_MAX_TOKENS": "300", "PERSONA_FACE_ENABLED": "false"}
    u = urlparse(live_server.llm_url)
    # A's stream is paced (one token every 0.3 s), so it is still streaming when B takes the session over
    with FaultProxy(u.hostname, u.port) as paced:
        paced.mode, paced.pace_s = "pace", 0.3
        a_env = env | {"LLM_BASE_URL": paced.url}
        with launch(ARTIFACTS / "writer-a", a_env) as a, launch(ARTIFACTS / "writer-b", env) as b:
            first = await WS.connect(a.ws_url)
            sid = (await first.start())["session_id"]
            await first.send({"type": "user.text", "text": "Tell me a long story about the sea, please."})
            await first.until("response.delta")  # streaming on worker A
            second = await WS.connect(b.ws_url)
            resumed = await second.start(resume=sid)
            seen = await first.until("error", timeout=30)
            assert seen[-1]["code"] == "session_taken_over"
            cut = next(e for e in seen if e["type"] == "response.cancelled")
            # B loaded the record only after A had saved the cut-short reply
            assert [(m["role"], m.get("interrupted")) for m in resumed["history"]] == [
                ("user", None),
                ("assistant", "true"),
            ]
            assert resumed["history"][1]["content"] == cut["text"]
            events = await second.turn("And now a short one.")
            assert events[-1]["type"] == "response.done"
            await second.close()
            third = await WS.connect(a.ws_url)
            history = (await third.start(resume=sid))["history"]
            await third.close()
            assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
            assert [m["content"] for m in history if m["role"] == "user"] == [
                "Tell me a long story about the sea, please.",
                "And now a short one.",
            ]


async def test_serve_with_two_workers_behind_one_port(live_server, redis):
    env = worker_env(live_server, redis)
    env["PERSONA_FACE_ENABLED"] = "false"
    with launch(ARTIFACTS / "workers2", env, args=["--workers", "2"]) as srv:
        pids = set()
        for _ in range(40):
            async with httpx.AsyncClient() as c:  # a new connection each time: the kernel spreads them
                pids.add((await c.get(f"{srv.url}/healthz")).json()["pid"])
            if len(pids) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(pids) == 2, pids
        ws = await WS.connect(srv.ws_url)
        sid = (await ws.start())["session_id"]
        await ws.turn("hello from one worker")
        await ws.close()
        for _ in range(4):  # whichever worker takes each reconnect, the session is there
            ws = await WS.connect(srv.ws_url)
            assert (await ws.start(resume=sid))["history"][0]["content"] == "hello from one worker"
            await ws.close()


async def test_limits_and_metrics_are_shared_by_two_workers(live_server, redis, tmp_path):
    """Each of 8 new connections lands on either worker (the kernel spreads them), so limits or metrics kept per
    process would admit more than the key allows and each scrape would see only its own worker."""
    keys = tmp_path / "keys.sqlite3"
    hdr = {"Authorization": f"Bearer {create_key(keys, 'few', '--rate', '6', '--sessions', '3')}"}
    env = worker_env(live_server, redis) | {
        "PERSONA_FACE_ENABLED": "false",
        "PERSONA_REQUIRE_AUTH": "true",
        "PERSONA_KEYS_PATH": str(keys),
    }
    with launch(ARTIFACTS / "workers2-limits", env, args=["--workers", "2"]) as srv:
        conns = [WS(await websockets.connect(srv.ws_url, additional_headers=hdr)) for _ in range(8)]
        admitted, refused = [], []
        for ws in conns:
            try:
                await ws.send({"type": "session.start"})
            except websockets.ConnectionClosed:
                pass  # refused at once: the error below was sent before the close
            ev = await ws.recv(timeout=30)
            (admitted if ev["type"] == "session.started" else refused).append((ws, ev))
        assert len(admitted) == 3, [ev for _, ev in refused]  # max_sessions = 3 across both workers
        assert {ev["code"] for _, ev in refused} == {"too_many_sessions"}

        # Each scrape on a new connection, so both workers answer some. The kernel may hand a run of connections to
        # one process while the other is busy: scrape at least 12 times, and on until both have answered (≤ 60 s).
        pids: set[int] = set()
        seen_all: list[float] = []
        deadline = time.monotonic() + 60
        while (len(pids) < 2 or len(seen_all) < 12) and time.monotonic() < deadline:
            async with httpx.AsyncClient() as c:
                pids.add((await c.get(f"{srv.url}/healthz")).json()["pid"])
                seen_all.append(
                    metric_sum((await c.get(f"{srv.url}/metrics", headers=hdr)).text, "persona_active_sessions")
                )
            if len(seen_all) >= 12:
                await asyncio.sleep(0.2)
        seen = set(seen_all)
        assert len(pids) == 2 and seen == {3.0}, (pids, seen)

        # 6 turns a minute, a burst of 1: of three turns sent at once on three connections, one is answered
        for ws, _ in admitted:
            await ws.send({"type": "user.text", "text": "hello"})
        outcomes = [(await ws.until("response.done", "error", timeout=60))[-1] for ws, _ in admitted]
        assert sorted(e["type"] if e["type"] != "error" else e["code"] for e in outcomes) == [
            "rate_limited",
            "rate_limited",
            "response.done",
        ], outcomes
        for ws, _ in admitted:
            await ws.close()
        await asyncio.sleep(1)
        async with httpx.AsyncClient() as c:
            text = (await c.get(f"{srv.url}/metrics", headers=hdr)).text
        assert metric_sum(text, "persona_active_sessions") == 0
        assert metric_sum(text, 'persona_errors_total{code="too_many_sessions"}') == 5
        assert metric_sum(text, 'persona_errors_total{code="rate_limited"}') == 2


async def test_erasure_on_one_worker_ends_the_users_live_session_on_another(live_server, redis):
    """#40: erasing a user (or a session) through one worker ends her live conversation on another at once (Redis
    pub/sub), and nothing of it is written back (the store's tombstone)."""
    env = worker_env(live_server, redis)
    with launch(ARTIFACTS / "erase-a", env) as a, launch(ARTIFACTS / "erase-b", env) as b:
        ws = await WS.connect(a.ws_url)
        await ws.start(user_id="ines")
        assert (await ws.turn("My name is Ines and I feel tired today."))[-1]["type"] == "response.done"
        other = await WS.connect(a.ws_url)
        sid = (await other.start())["session_id"]
        t0 = time.monotonic()
        assert httpx.delete(f"{b.url}/v1/users/ines", timeout=30).status_code == 200  # through worker B
        ev = await ws.recv(timeout=10)
        assert ev["type"] == "error" and ev["code"] == "session_erased", ev
        assert time.monotonic() - t0 < 5
        assert httpx.delete(f"{b.url}/v1/sessions/{sid}", timeout=30).status_code == 200
        assert (await other.recv(timeout=10))["code"] == "session_erased"
        await asyncio.sleep(1.0)
        assert httpx.get(f"{a.url}/v1/users/ines/export", timeout=30).status_code == 404
        assert httpx.get(f"{b.url}/v1/sessions/{sid}", timeout=30).status_code == 404
