"""Start `persona-agent serve` as a child process on loopback and wait until it is ready (tests and benchmarks)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# The key every embedded vLLM started here requires (it answers /v1 to no one else), and the one a server started here
# with LLM_BASE_URL uses by default: tests point second servers at the session's engine.
ENGINE_KEY = "harness-" + secrets.token_urlsafe(16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_sum(text: str, name: str) -> float:
    """One metric of a Prometheus text exposition, summed over its label sets (`name` may carry a label set)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    ws_url: str  # ws://127.0.0.1:PORT/v1/chat
    llm_url: str  # the LLM's root URL (the embedded vLLM unless LLM_BASE_URL was given)
    max_tokens: int | None
    pid: int
    llm_key: str = ENGINE_KEY  # what the LLM's /v1 routes require

    @property
    def llm_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.llm_key}"}

    def rss_mb(self) -> float:
        """Resident memory of the server process (not its vLLM child)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def vllm_metric(self, name: str) -> float:
        """Sum of one of vLLM's Prometheus metrics over its label sets."""
        return metric_sum(httpx.get(f"{self.llm_url}/metrics", timeout=5).text, name)


@contextmanager
def live_server(
    log_dir: Path, env: Mapping[str, str] | None = None, ready_timeout_s: float = 420, args: Sequence[str] = ()
) -> Iterator[LiveServer]:
    """Run the real server (and, unless LLM_BASE_URL is set in `env`, its embedded vLLM) until the block exits."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port, llm_port = free_port(), free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in ("LLM_BASE_URL", "LLM_MODEL")}
    full_env.update(
        PERSONA_PORT=str(port),
        PERSONA_EMBEDDED_LLM_PORT=str(llm_port),
        PERSONA_EMBEDDED_LLM_LOG=str(log_dir / "vllm.log"),
        PERSONA_LOG_LEVEL="warning",
    )
    full_env.update(env or {})
    full_env.setdefault("PERSONA_EMBEDDED_LLM_API_KEY", ENGINE_KEY)
    if "LLM_BASE_URL" in full_env:
        full_env.setdefault("LLM_API_KEY", ENGINE_KEY)
    llm_url = full_env.get("LLM_BASE_URL", f"http://127.0.0.1:{llm_port}/v1").rstrip("/").removesuffix("/v1")
    max_tokens = int(full_env["PERSONA_LLM_MAX_TOKENS"]) if "PERSONA_LLM_MAX_TOKENS" in full_env else None
    exe = Path(sys.executable).with_name("persona-agent")
    with open(log_dir / "server.log", "wb") as log:
        proc = subprocess.Popen([str(exe), "serve", *args], env=full_env, stdout=log, stderr=subprocess.STDOUT)
        server = LiveServer(
            f"http://127.0.0.1:{port}",
            f"ws://127.0.0.1:{port}/v1/chat",
            llm_url,
            max_tokens,
            proc.pid,
            full_env["LLM_API_KEY" if "LLM_BASE_URL" in full_env else "PERSONA_EMBEDDED_LLM_API_KEY"],
        )
        try:
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}; see {log_dir / 'server.log'}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready in {ready_timeout_s:.0f} s; see {log_dir / 'server.log'}")
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
                proc.wait()
