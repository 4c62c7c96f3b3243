"""A TCP proxy on loopback in front of the real LLM server that can be told to fail: refuse (accept and hang up),
answer 503, be slow, cut a streaming response after N bytes, or pace a stream (one server-sent event per `pace_s`,
like a slower GPU server: the tokens are the real engine's, only their timing changes). Runs its own event loop in a thread.

Every request passes with `Connection: close` added, so each request is a new connection and a mode change takes
effect on the next request, whatever the client's connection pool holds."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import httpx

from harness import LiveServer
from harness import live_server as launch

Mode = Literal["pass", "down", "error", "slow", "cut", "pace"]


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "pass"
        self.delay_s = 0.0
        self.cut_after = 1500  # response bytes forwarded before the cut
        self.pace_s = 0.0  # "pace": wait this long before forwarding each server-sent event
        self.requests = 0
        self.bodies: list[bytes] = []  # every request body, in order (what the backend sent the LLM)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(shutdown()))
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length) if length else b""
            self.requests += 1
            self.bodies.append(body)
            if mode == "down":
                return  # hang up without a word
            if mode == "error":
                msg = b'{"error": {"message": "injected failure", "type": "server_error"}}'
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(msg), msg)
                )
                await writer.drain()
                return
            if mode == "slow":
                await asyncio.sleep(self.delay_s)
            up_r, up_w = await asyncio.open_connection(*self.upstream)
            lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
            head = b"\r\n".join(lines[:-2] + [b"Connection: close", b"", b""])
            up_w.write(head + body)
            await up_w.drain()
            sent = 0
            while chunk := await up_r.read(4096):
                if mode == "cut" and sent + len(chunk) > self.cut_after:
                    writer.write(chunk[: self.cut_after - sent])
                    await writer.drain()
                    break  # the stream breaks off mid-reply
                if mode == "pace":
                    for piece in re.split(rb"(?<=\n\n)", chunk):  # the byte stream is unchanged, only delayed
                        if piece:
                            await asyncio.sleep(self.pace_s)
                            writer.write(piece)
                            await writer.drain()
                else:
                    writer.write(chunk)
                    await writer.drain()
                sent += len(chunk)
            up_w.close()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


@contextmanager
def server_behind_proxy(engine: LiveServer, log_dir: Path, **env: str) -> Iterator[tuple[LiveServer, FaultProxy]]:
    """A second server process whose LLM is `engine`'s real vLLM reached through a FaultProxy: greedy, 64-token
    replies, its own memory store; `env` adds or overrides settings."""
    u = urlparse(engine.llm_url)
    served = httpx.get(f"{engine.llm_url}/v1/models", timeout=10, headers=engine.llm_headers).json()["data"][0][
        "id"
    ]  # the adapter, by default
    with FaultProxy(u.hostname, u.port) as proxy:
        full = {
            "LLM_BASE_URL": proxy.url,
            "LLM_MODEL": served,
            "LLM_API_KEY": engine.llm_key,
            "PERSONA_STORE": "memory",
            "PERSONA_LLM_TEMPERATURE": "0",
            "PERSONA_LLM_MAX_TOKENS": "64",
            **env,
        }
        with launch(log_dir, full) as srv:
            yield srv, proxy
