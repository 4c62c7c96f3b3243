"""The LLM stream against the real embedded engine: with a stream interval, the tokens that arrive within it of the
last piece are passed on together (fewer pieces, each several tokens, at least the interval apart), and nothing is
lost: every token the engine counted is in a piece, and the text is the one the engine streams piece by piece."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import SecretStr

from agent.llm import OpenAICompatibleChat

pytestmark = pytest.mark.llm

MESSAGES = [
    SystemMessage("You are a helpful assistant."),
    HumanMessage(
        "I moved to a new city last month and I don't know anyone here yet. List five ways I could "
        "meet people, one sentence each."
    ),
]
MAX_TOKENS = 48


async def pieces(chat: OpenAICompatibleChat) -> list[tuple[float, str, int, int | None]]:
    """(arrival time, text, text-bearing tokens in it, the engine's completion-token count if it carried usage)."""
    out = []
    try:
        # ignore_eos (vLLM's): the reply runs to max_tokens, so there are enough tokens to group whatever the model says
        async for c in chat.astream(MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0, extra_body={"ignore_eos": True}):
            usage = c.usage_metadata["output_tokens"] if c.usage_metadata else None
            out.append((time.perf_counter(), str(c.content), int(c.response_metadata.get("tokens", 0)), usage))
    finally:
        await chat.aclose()
    return out


def test_a_stream_interval_passes_tokens_on_together_and_loses_none(live_server):
    model = httpx.get(f"{live_server.llm_url}/v1/models", timeout=10, headers=live_server.llm_headers).json()["data"][
        0
    ]["id"]

    def chat(interval: float) -> OpenAICompatibleChat:
        return OpenAICompatibleChat(
            model=model,
            base_url=f"{live_server.llm_url}/v1",
            timeout_s=300,
            stream_interval_s=interval,
            api_key=SecretStr(live_server.llm_key),
        )

    asyncio.run(pieces(chat(0.0)))  # warm the engine's prefix cache, so both runs below see the same engine state
    each = asyncio.run(pieces(chat(0.0)))
    grouped = asyncio.run(pieces(chat(0.3)))

    # Nothing lost: the same text, and the same count of text-bearing tokens, as the engine streamed one by one.
    assert "".join(t for _, t, _, _ in grouped) == "".join(t for _, t, _, _ in each)  # greedy: the same reply
    assert sum(k for _, _, k, _ in grouped) == sum(k for _, _, k, _ in each) >= MAX_TOKENS * 3 // 4
    assert [u for *_, u in grouped if u is not None] == [u for *_, u in each if u is not None] == [MAX_TOKENS]

    text_each = [p for p in each if p[2]]
    text_grouped = [p for p in grouped if p[2]]
    # The embedded engine on CPU writes a token every few tens of ms. Without an interval the pieces are as the engine
    # sent them (one token each on an idle machine; under load vLLM itself merges a few), with it far fewer.
    assert len(text_each) >= 0.4 * sum(k for _, _, k, _ in each)
    assert len(text_grouped) < len(text_each) / 2
    assert max(k for _, _, k, _ in text_grouped) >= 3
    gaps = [b[0] - a[0] for a, b in zip(text_grouped, text_grouped[1:])]
    assert min(gaps) >= 0.28, gaps  # each piece at least the interval after the one before (timer slack aside)
