"""The embedded engine is supervised: vLLM killed mid-reply is restarted, the cut turn gets a typed retryable error,
the next turn on the same session streams; and the backend refuses to adopt a process it did not start."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import httpx
import pytest

from harness import free_port, live_server as launch
from tests.conftest import ARTIFACTS
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


async def test_killed_engine_is_restarted_and_the_session_goes_on():
    env = {"PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": "400", "PERSONA_STORE": "memory",
           "PERSONA_VOICE_ENABLED": "false", "PERSONA_FACE_ENABLED": "false"}
    with launch(ARTIFACTS / "supervised", env) as srv:
        engine = httpx.get(f"{srv.url}/readyz").json()["engine"]
        assert engine["state"] == "up" and engine["restarts"] == 0
        ws = await WS.connect(srv.ws_url)
        await ws.start(profile="companion")
        await ws.send({"type": "user.text", "text": "Tell me a long story about a lighthouse keeper, please."})
        await ws.until("response.delta")
        os.kill(engine["pid"], signal.SIGKILL)  # the engine dies mid-reply
        events = await ws.until("error", "response.done", timeout=60)
        assert events[-1]["type"] == "error" and events[-1]["code"] == "llm_interrupted" and events[-1]["retryable"]

        ready: dict = {}
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            ready = httpx.get(f"{srv.url}/readyz", timeout=10).json()
            assert ready["status"] in ("ready", "degraded")  # the pod stays in the load balancer meanwhile
            if ready["engine"]["state"] == "up" and ready["engine"]["restarts"] == 1:
                break
            await asyncio.sleep(1)
        assert ready["engine"]["state"] == "up" and ready["engine"]["restarts"] == 1, ready
        assert ready["engine"]["pid"] != engine["pid"] and all(e["ok"] for e in ready["llm"])

        events = await ws.turn("Are you still there?")
        assert events[-1]["type"] == "response.done" and any(e["type"] == "response.delta" for e in events)
        await ws.close()


def test_a_process_already_on_the_engine_port_is_not_adopted():
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RuntimeError, match="server exited"):
            with launch(ARTIFACTS / "squatted", {"PERSONA_EMBEDDED_LLM_PORT": str(port), "PERSONA_STORE": "memory"},
                        ready_timeout_s=120):
                pass
    log = (ARTIFACTS / "squatted" / "server.log").read_text()
    assert "already in use by a process this backend did not start" in log
