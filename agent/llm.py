"""The LLM client: LangChain's ChatOpenAI against vLLM's OpenAI-compatible API, streamed."""
from __future__ import annotations

import itertools
import time
from collections.abc import AsyncGenerator
from typing import Any
from dataclasses import dataclass, field

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from prompts import Message, Prompt


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str  # ends in /v1
    model: str
    api_key: str = "EMPTY"
    timeout_s: float = 60.0
    max_retries: int = 0  # the conversation retries itself, and only before the user has seen any of the reply
    replicas: tuple[str, ...] = ()  # more OpenAI-compatible endpoints serving the same model (vLLM replicas)
    cooldown_s: float = 10.0  # an endpoint that failed is skipped this long, unless all have failed

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (self.base_url, *self.replicas)


@dataclass(slots=True)
class Endpoint:
    url: str
    chat: ChatOpenAI
    in_flight: int = 0
    failed_at: float = field(default=-1e9)


@dataclass(slots=True)
class StreamStats:
    """Filled in while a stream runs; read after it ends (or is cancelled)."""

    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    endpoint: str | None = None


_ROLE = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(messages: tuple[Message, ...]) -> list[BaseMessage]:
    return [_ROLE[m.role](content=m.content) for m in messages]


class LLMClient:
    """One ChatOpenAI (one HTTP connection pool) per endpoint, shared by all sessions. With replicas, each request
    goes to the healthy endpoint with the fewest requests in flight from this process (ties in turn); an endpoint
    whose request failed to connect or answered 5xx sits out `cooldown_s` (a passive health check)."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.endpoints = [Endpoint(url, self._make(url)) for url in config.endpoints]
        self._turn = itertools.count()

    def _make(self, url: str) -> ChatOpenAI:
        c = self.config
        return ChatOpenAI(model=c.model, base_url=url, api_key=SecretStr(c.api_key), timeout=c.timeout_s, max_retries=c.max_retries,
                          streaming=True, stream_usage=True)

    def choose(self) -> Endpoint:
        now = time.monotonic()
        healthy = [e for e in self.endpoints if now - e.failed_at >= self.config.cooldown_s] or self.endpoints
        low = min(e.in_flight for e in healthy)
        least = [e for e in healthy if e.in_flight == low]
        return least[next(self._turn) % len(least)]

    async def stream(self, prompt: Prompt, stats: StreamStats | None = None) -> AsyncGenerator[str, None]:
        """Yield text deltas. Closing this generator (cancel, disconnect) closes the HTTP stream, which makes
        vLLM abort the request."""
        s = prompt.sampling
        ep = self.choose()
        # LangChain sends max_tokens as `max_completion_tokens`, which vLLM honours; vLLM-only knobs go in extra_body.
        agen: Any = ep.chat.astream(  # an async generator (closed below)
            to_langchain(prompt.messages),
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            presence_penalty=s.presence_penalty,
            extra_body=dict(s.extra) or None,
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
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if status is None or status >= 500:
                ep.failed_at = time.monotonic()  # sit out the cooldown; the caller's retry goes elsewhere
            raise
        finally:
            ep.in_flight -= 1
            await agen.aclose()
