"""Scale-out on a real Redis: two server processes (workers) share sessions through Redis and the session's vLLM;
a conversation moves between them mid-way, survives one being killed mid-reply, and `serve --workers 2` spreads
connections over two processes behind one port."""
from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from harness import live_server as launch
from tests.conftest import ARTIFACTS
from tests.redisserver import RedisServer
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as r:
        yield r


def worker_env(live_server, redis) -> dict[str, str]:
    return {"LLM_BASE_URL": f"{live_server.llm_url}/v1", "PERSONA_STORE": "redis", "PERSONA_REDIS_URL": redis.url,
            "PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": "48", "PERSONA_VOICE_ENABLED": "false"}


async def test_session_moves_between_workers_and_survives_a_killed_one(live_server, redis):
    env = worker_env(live_server, redis)
    with launch(ARTIFACTS / "worker-a", env) as a, launch(ARTIFACTS / "worker-b", env) as b:
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
        await ws.send({"type": "user.text", "text": "Tell me a long story to calm me down, please."})
        await ws.until("response.delta")
        os.kill(b.pid, signal.SIGKILL)  # worker B dies mid-reply
        with pytest.raises(Exception):
            await ws.until("response.done", timeout=10)

        ws = await WS.connect(a.ws_url)  # the client retries on a live worker
        started = await ws.start(resume=sid)
        users = [m["content"] for m in started["history"] if m["role"] == "user"]
        assert users[-1] == "Tell me a long story to calm me down, please."  # stored before the LLM was called
        assert len(users) == 3 and started["persona"]["turns"] == 3
        done = (await ws.turn("Are you still there?"))[-1]
        assert done["type"] == "response.done"
        await ws.close()


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
