"""The LLM client: a LangChain chat model against vLLM's OpenAI-compatible API, streamed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import orjson
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr, SecretStr

from prompts import Message, Prompt
from prompts.tools import ToolCall

STREAM_INTERVAL_S = 0.03  # LLMConfig.stream_interval_s by default


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str  # ends in /v1
    model: str
    api_key: str = "EMPTY"
    timeout_s: float = 60.0
    replicas: tuple[str, ...] = ()  # more OpenAI-compatible endpoints serving the same model (vLLM replicas)
    cooldown_s: float = 10.0  # an endpoint that failed is skipped this long, unless all have failed
    # After a piece of the stream is passed on, what arrives in the next `stream_interval_s` is passed on with it as one
    # piece: a fast model's tokens reach the user a few at a time (30 ms: ~33 updates a second, more than reading needs)
    # and every piece costs the server its parse, guard check and WebSocket message once, not once per token. The first
    # piece is never held; a model slower than one token per interval (the embedded engine on CPU) is not affected.
    stream_interval_s: float = STREAM_INTERVAL_S
    context_tokens: int | None = None  # the model's context (vLLM's max_model_len from /v1/models); None: unknown

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (self.base_url, *self.replicas)


@dataclass(slots=True)
class Endpoint:
    url: str
    chat: OpenAICompatibleChat
    in_flight: int = 0
    failed_at: float = field(default=-1e9)


@dataclass(slots=True)
class StreamStats:
    """Filled in while a stream runs; read after it ends (or is cancelled)."""

    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    endpoint: str | None = None
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments so far]

    def add_call_chunk(self, index: int, id_: str | None, name: str | None, args: str | None) -> None:
        """One streamed fragment of a tool call (OpenAI's `delta.tool_calls[i]`): the id and name come first, the
        arguments' JSON text in pieces."""
        call = self.calls.setdefault(index, ["", "", ""])
        call[0], call[1] = id_ or call[0], name or call[1]
        call[2] += args or ""

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(id=i or f"call_{k}", name=n, arguments=a) for k, (i, n, a) in sorted(self.calls.items()))


_ROLE = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
_OPENAI_ROLE = {"system": "system", "human": "user", "ai": "assistant"}


def _chunk_of(lines: list[bytes]) -> tuple[ChatGenerationChunk | None, bool]:
    """The server-sent event lines read together → one chunk (None: no text, end or usage in them), and whether the
    stream's `[DONE]` was among them."""
    parts: list[str] = []
    calls: list[ToolCallChunk] = []
    meta: dict[str, Any] = {}
    usage = None
    for line in lines:
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return _chunk(parts, calls, meta, usage), True
        obj = orjson.loads(data)
        usage = obj.get("usage") or usage
        if obj.get("choices"):
            choice = obj["choices"][0]
            delta = choice.get("delta") or {}
            if content := delta.get("content"):
                parts.append(content)
            for c in delta.get("tool_calls") or ():
                fn = c.get("function") or {}
                calls.append(
                    tool_call_chunk(
                        name=fn.get("name"), args=fn.get("arguments"), id=c.get("id"), index=int(c.get("index", 0))
                    )
                )
            if choice.get("finish_reason"):
                meta = {"finish_reason": choice["finish_reason"], "model_name": obj.get("model")}
    return _chunk(parts, calls, meta, usage), False


def _chunk(
    parts: list[str], calls: list[ToolCallChunk], meta: dict[str, Any], usage: dict[str, Any] | None
) -> ChatGenerationChunk | None:
    if parts or calls:
        meta["tokens"] = len(parts) + len(calls)  # one streamed event per model token
    if not (parts or calls or meta or usage):
        return None
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content="".join(parts),
            tool_call_chunks=calls,
            usage_metadata=_usage(usage) if usage else None,
            response_metadata=meta,
        )
    )


def _usage(usage: dict[str, Any]) -> UsageMetadata:
    """OpenAI-style usage counts as LangChain's."""
    return UsageMetadata(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        total_tokens=usage.get("total_tokens") or 0,
    )


class LLMStatusError(Exception):
    """The LLM endpoint answered an HTTP error status."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"HTTP {status_code}: {body[:300]}")
        self.status_code = status_code


# What a failed request to the LLM raises besides LLMStatusError: no connection, a timeout, a stream broken off.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, asyncio.TimeoutError, httpx.HTTPError)


class OpenAICompatibleChat(BaseChatModel):
    """A LangChain chat model for an OpenAI-compatible `/chat/completions` (vLLM), streamed over one pooled aiohttp
    session with the SSE lines parsed by orjson. It speaks the same wire format as langchain-openai's ChatOpenAI; it
    exists because ChatOpenAI builds the OpenAI SDK's pydantic models for every streamed chunk, which under load cost
    the server more CPU than perception does (bench/load.py; profile in docs/benchmarks.md). The stream
    goes over aiohttp rather than httpx: against the scripted stand-in (24 events per stream), httpx cost the client
    4.0 ms of CPU per stream at 25 streams at once and 21 ms at 100 (its connection pool), aiohttp 1.5 and 1.2 ms.
    `max_tokens`, `temperature`, `presence_penalty` and `extra_body` (vLLM's own sampling knobs) are per call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    base_url: str  # ends in /v1
    api_key: SecretStr = SecretStr("EMPTY")
    timeout_s: float = 60.0
    max_connections: int = 1000
    stream_interval_s: float = 0.0  # LLMConfig.stream_interval_s
    _session: aiohttp.ClientSession | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url}

    def _body(
        self, messages: Sequence[BaseMessage], stop: list[str] | None, stream: bool, kwargs: dict[str, Any]
    ) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": stream,
            "messages": [{"role": _OPENAI_ROLE[m.type], "content": m.content} for m in messages],
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if stop:
            body["stop"] = stop
        for k in ("max_tokens", "temperature", "presence_penalty", "tools", "tool_choice"):
            if kwargs.get(k) is not None:
                body[k] = kwargs[k]
        body |= kwargs.get("extra_body") or {}
        return orjson.dumps(body)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}", "Content-Type": "application/json"}

    def session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop that uses it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=self.max_connections),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """One chunk per read from the socket: the server-sent events that arrived together (several tokens when the
        process is busy, one when it is idle) are parsed and yielded as one chunk, so a loaded server does less work
        per token rather than falling further behind. After a chunk, the next read waits until `stream_interval_s`
        has passed, so that what arrives in between is one chunk too (the events wait in the socket's buffer)."""
        url = f"{self.base_url.rstrip('/')}/chat/completions"
        loop = asyncio.get_running_loop()
        async with self.session().post(
            url, data=self._body(messages, stop, True, kwargs), headers=self._headers()
        ) as r:
            if r.status >= 400:
                raise LLMStatusError(r.status, (await r.read()).decode("utf-8", "replace"))
            done = False
            try:
                buf = b""
                last: float | None = None  # when the last chunk was yielded
                while True:
                    if last is not None and (wait := last + self.stream_interval_s - loop.time()) > 0:
                        await asyncio.sleep(wait)
                    raw = await r.content.readany()
                    if not raw:
                        break
                    buf += raw
                    *lines, buf = buf.split(b"\n")
                    chunk, done = _chunk_of(lines)
                    if chunk is not None:
                        yield chunk
                        last = loop.time()
                    if done:
                        break
            finally:
                # Left before the end (cancelled, the client gone, an error): drop the connection rather than pool
                # it, so that vLLM sees the disconnect and aborts the request.
                if not done:
                    r.close()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        url = f"{self.base_url.rstrip('/')}/chat/completions"
        r = httpx.post(
            url, content=self._body(messages, stop, False, kwargs), headers=self._headers(), timeout=self.timeout_s
        )
        if r.status_code >= 400:
            raise LLMStatusError(r.status_code, r.text)
        obj = orjson.loads(r.content)
        choice, usage = obj["choices"][0], obj.get("usage") or {}
        message = AIMessage(
            content=choice["message"].get("content") or "",
            response_metadata={"finish_reason": choice.get("finish_reason"), "model_name": obj.get("model")},
            usage_metadata=_usage(usage),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def to_langchain(messages: tuple[Message, ...]) -> list[BaseMessage]:
    return [_ROLE[m.role](content=m.content) for m in messages]


class LLMClient:
    """One LangChain chat model (one HTTP connection pool) per endpoint, shared by all sessions. With replicas, each request
    goes to the healthy endpoint with the fewest requests in flight from this process (ties in turn); an endpoint
    whose request failed to connect or answered 5xx sits out `cooldown_s` (a passive health check)."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.endpoints = [Endpoint(url, self._make(url)) for url in config.endpoints]
        self._turn = itertools.count()

    def _make(self, url: str) -> OpenAICompatibleChat:
        c = self.config
        return OpenAICompatibleChat(
            model=c.model,
            base_url=url,
            api_key=SecretStr(c.api_key),
            timeout_s=c.timeout_s,
            stream_interval_s=c.stream_interval_s,
        )

    async def aclose(self) -> None:
        for e in self.endpoints:
            await e.chat.aclose()

    def choose(self) -> Endpoint:
        now = time.monotonic()
        healthy = [e for e in self.endpoints if now - e.failed_at >= self.config.cooldown_s] or self.endpoints
        low = min(e.in_flight for e in healthy)
        least = [e for e in healthy if e.in_flight == low]
        return least[next(self._turn) % len(least)]

    async def count_tokens(self, prompt: Prompt) -> int | None:
        """The prompt's exact length in tokens, chat template included, from vLLM's /tokenize; None where the server
        has no such route (another OpenAI-compatible server) or does not answer in time."""
        ep = self.choose()
        body = {
            "model": self.config.model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "add_generation_prompt": True,
        }
        try:
            async with ep.chat.session().post(
                ep.url.removesuffix("/v1") + "/tokenize",
                json=body,
                headers={"Authorization": f"Bearer {self.config.api_key}"},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as r:
                if r.status != 200:
                    return None
                count = (await r.json()).get("count")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        return int(count) if isinstance(count, int) else None

    async def stream(self, prompt: Prompt, stats: StreamStats | None = None) -> AsyncGenerator[tuple[str, int], None]:
        """Yield (text, model tokens in it): one piece per read from the socket. Closing this generator (cancel,
        disconnect) closes the HTTP stream, which makes vLLM abort the request. The tool calls the model makes (when
        the prompt offers tools) are gathered in `stats.calls`, not yielded."""
        s = prompt.sampling
        ep = self.choose()
        # vLLM-only knobs go in extra_body, merged into the request body.
        use = prompt.tools
        agen: Any = ep.chat.astream(  # an async generator (closed below)
            to_langchain(prompt.messages),
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            presence_penalty=s.presence_penalty,
            extra_body=dict(s.extra) or None,
            tools=[t.openai() for t in use.tools] if use.offered else None,
            tool_choice=use.openai_choice() if use.offered else None,
        )
        ep.in_flight += 1
        if stats is not None:
            stats.endpoint = ep.url
        try:
            async for chunk in agen:
                if stats is not None:
                    if chunk.usage_metadata:
                        stats.completion_tokens = chunk.usage_metadata.get("output_tokens")
                        stats.prompt_tokens = chunk.usage_metadata.get("input_tokens")
                    reason = (chunk.response_metadata or {}).get("finish_reason")
                    if reason:
                        stats.finish_reason = reason
                    for c in chunk.tool_call_chunks:
                        stats.add_call_chunk(c.get("index") or 0, c.get("id"), c.get("name"), c.get("args"))
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content, int((chunk.response_metadata or {}).get("tokens", 1))
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if status is None or status >= 500:
                ep.failed_at = time.monotonic()  # sit out the cooldown; the caller's retry goes elsewhere
            raise
        finally:
            ep.in_flight -= 1
            await agen.aclose()
