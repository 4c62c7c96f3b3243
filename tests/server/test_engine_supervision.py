"""The embedded engine is supervised: vLLM killed mid-reply is restarted, the cut turn gets a typed retryable error,
the next turn on the same session streams; and the backend refuses to adopt a process it did not start."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness import free_port
from harness import live_server as launch
from tests.conftest import ARTIFACTS
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


async def test_killed_engine_is_restarted_and_the_session_goes_on():
    env = {
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": "400",
        "PERSONA_STORE": "memory",
        "PERSONA_VOICE_ENABLED": "false",
        "PERSONA_FACE_ENABLED": "false",
    }
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
            with launch(
                ARTIFACTS / "squatted",
                {"PERSONA_EMBEDDED_LLM_PORT": str(port), "PERSONA_STORE": "memory"},
                ready_timeout_s=120,
            ):
                pass
    log = (ARTIFACTS / "squatted" / "server.log").read_text()
    assert "already in use by a process this backend did not start" in log


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of ours counts as gone
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.5)
    return False


def test_sigterm_during_a_long_analysis_stops_the_server_and_its_engine(tmp_path):
    """#40 row 11: uvicorn waited for every open request, so a server busy analysing ignored SIGTERM; a second signal
    forced it out without stopping the embedded vLLM. Now open requests get PERSONA_SHUTDOWN_GRACE_S, then the
    shutdown runs and stops the engine; a server killed outright takes its engine with it (the engine's watchdog)."""
    import threading

    import soundfile as sf

    noise = (np.random.default_rng(0).standard_normal(16000 * 590) * 0.1).astype(np.float32)
    sf.write(tmp_path / "long.wav", noise, 16000, subtype="PCM_16")
    data = (tmp_path / "long.wav").read_bytes()
    env = {
        "PERSONA_STORE": "memory",
        "PERSONA_FACE_ENABLED": "false",
        "PERSONA_TTS_ENABLED": "false",
        "PERSONA_SHUTDOWN_GRACE_S": "3",
    }
    with launch(ARTIFACTS / "sigterm", env) as srv:
        engine = httpx.get(f"{srv.url}/readyz", timeout=10).json()["engine"]["pid"]
        threading.Thread(
            target=lambda: httpx.post(f"{srv.url}/v1/analyze/voice", content=data, timeout=600), daemon=True
        ).start()
        time.sleep(3.0)  # decoding and transcribing ten minutes of audio: far longer than the grace period
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        assert _gone(srv.pid, 30), "the server did not stop within 30 s of SIGTERM"
        stopped_s = time.monotonic() - t0
        assert _gone(engine, 15), "the embedded vLLM outlived its server"
    assert stopped_s < 20, stopped_s
    with launch(
        ARTIFACTS / "sigkill",
        {"PERSONA_STORE": "memory", "PERSONA_VOICE_ENABLED": "false", "PERSONA_FACE_ENABLED": "false"},
    ) as srv:
        engine = httpx.get(f"{srv.url}/readyz", timeout=10).json()["engine"]["pid"]
        os.kill(srv.pid, signal.SIGKILL)  # no shutdown runs at all
        assert _gone(engine, 20), "the embedded vLLM was left running after its server was killed"
