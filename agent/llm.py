"""The LLM client: LangChain's ChatOpenAI against vLLM's OpenAI-compatible API, streamed."""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from prompts import Message, Prompt


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str  # ends in /v1
    model: str
    api_key: str = "EMPTY"
    timeout_s: float = 60.0
    max_retries: int = 0  # the conversation retries itself, and only before the user has seen any of the reply


@dataclass(slots=True)
class StreamStats:
    """Filled in while a stream runs; read after it ends (or is cancelled)."""

    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None


_ROLE = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(messages: tuple[Message, ...]) -> list[BaseMessage]:
    return [_ROLE[m.role](content=m.content) for m in messages]


class LLMClient:
    """One ChatOpenAI (one HTTP connection pool) shared by all sessions."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._chat = ChatOpenAI(
            model=config.model,
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            streaming=True,
            stream_usage=True,
        )

    async def stream(self, prompt: Prompt, stats: StreamStats | None = None) -> AsyncIterator[str]:
        """Yield text deltas. Closing this generator (cancel, disconnect) closes the HTTP stream, which makes
        vLLM abort the request."""
        s = prompt.sampling
        # LangChain sends max_tokens as `max_completion_tokens`, which vLLM honours; vLLM-only knobs go in extra_body.
        agen = self._chat.astream(
            to_langchain(prompt.messages),
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            presence_penalty=s.presence_penalty,
            extra_body=dict(s.extra) or None,
        )
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
        finally:
            await agen.aclose()
