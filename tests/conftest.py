"""Shared fixtures: a real `persona-agent serve` process on loopback, with its real embedded vLLM engine."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
SHARED = ROOT.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    ws_url: str  # ws://127.0.0.1:PORT/v1/chat
    llm_url: str  # the embedded vLLM's root URL
    max_tokens: int

    def vllm_metric(self, name: str) -> float:
        """Sum of a vLLM Prometheus metric over its label sets."""
        text = httpx.get(f"{self.llm_url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="session")
def live_server() -> LiveServer:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port, llm_port, max_tokens = free_port(), free_port(), 64
    env = dict(
        os.environ,
        PERSONA_PORT=str(port),
        PERSONA_EMBEDDED_LLM_PORT=str(llm_port),
        PERSONA_EMBEDDED_LLM_LOG=str(ARTIFACTS / "vllm.log"),
        PERSONA_LLM_TEMPERATURE="0",
        PERSONA_LLM_MAX_TOKENS=str(max_tokens),
        PERSONA_LOG_LEVEL="warning",
    )
    env.pop("LLM_BASE_URL", None)
    log = open(ARTIFACTS / "server.log", "wb")
    exe = Path(sys.executable).with_name("persona-agent")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/chat", f"http://127.0.0.1:{llm_port}", max_tokens)
    deadline = time.monotonic() + 420
    try:
        while True:
            assert proc.poll() is None, f"server exited with {proc.returncode}; see {ARTIFACTS / 'server.log'}"
            assert time.monotonic() < deadline, "server not ready in 420 s"
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
