"""The turn in-process, in well under a second: the real pipeline (the lexicon perceiver and the phrase rules, the
confidence fusion, the packaged policy and profiles, the memory store) with a scripted LLM at the `LLMClient`
boundary — the one place a scripted model is allowed for the turn's lifecycle. The same behaviours are tested
against the real engine through the server (tests/server/test_chat_ws.py, test_llm_faults.py, test_safety_ws.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

import pytest

from agent.batcher import MicroBatcher
from agent.events import Event
from agent.llm import LLMConfig, LLMStatusError, StreamStats
from agent.reading import TextReader
from agent.sessions import MemoryStore, SessionRecord
from agent.turn import Pipeline, Turn, TurnConfig, UserTurn
from fusion import ConfidenceFusion
from perception.text_lexicon import load_lexicon_text_perceiver
from persona import PersonaState, PersonaTracker, load_policy
from prompts import Prompt, load_profiles


class ScriptedLLM:
    """Answers every prompt with `pieces`, after failing the first `failures` requests with HTTP 503."""

    def __init__(self, pieces: list[str], failures: int = 0) -> None:
        self.config = LLMConfig(base_url="http://scripted.invalid/v1", model="scripted")
        self.pieces, self.failures, self.prompts = pieces, failures, list[Prompt]()

    async def stream(self, prompt: Prompt, stats: StreamStats | None = None) -> AsyncGenerator[tuple[str, int], None]:
        self.prompts.append(prompt)
        if self.failures:
            self.failures -= 1
            raise LLMStatusError(503, "overloaded")
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece, 1
        if stats is not None:
            stats.finish_reason, stats.completion_tokens = "stop", len(self.pieces)

    async def count_tokens(self, prompt: Prompt) -> int | None:
        return None


def pipeline(llm: ScriptedLLM) -> Pipeline:
    text = load_lexicon_text_perceiver()
    reader = TextReader(text, None, None)
    return Pipeline(
        reader=reader,
        batcher=MicroBatcher(reader.read_batch),
        fusion=ConfidenceFusion(),
        tracker=PersonaTracker(),
        policy=load_policy(),
        profiles=load_profiles(),
        llm=llm,  # type: ignore[arg-type]
        store=MemoryStore(),
        config=TurnConfig(controls_at="system"),
    )


async def run_turn(p: Pipeline, text: str) -> tuple[SessionRecord, list[Event]]:
    rec = SessionRecord(id="s1", profile_id="wellbeing_coach", user_id=None, persona=PersonaState.initial(0.0))
    return rec, [e async for e in Turn(p, rec, UserTurn(text), face=None, locale="en-US").run()]


async def test_a_turn_streams_its_events_in_order_and_keeps_the_reply():
    llm = ScriptedLLM(["That sounds ", "like a lot. ", "What helped last time?"])
    rec, events = await run_turn(pipeline(llm), "Work has been hard this week.")
    kinds = [e.type for e in events]
    assert kinds[0] == "perception" and kinds.index("persona") < kinds.index("controls") < kinds.index("response.delta")
    assert kinds[-1] == "response.done" and "safety" not in kinds
    done = events[-1]
    assert done.text == "That sounds like a lot. What helped last time?" and done.model == "scripted"
    assert [m.role for m in rec.history] == ["user", "assistant"] and rec.history[1].content == done.text
    assert "Work has been hard this week." in llm.prompts[0].messages[-1].content


async def test_a_crisis_gets_the_fixed_reply_and_never_reaches_the_model():
    llm = ScriptedLLM(["anything"])
    _, events = await run_turn(pipeline(llm), "I want to kill myself tonight.")
    safety = [e for e in events if e.type == "safety"]
    assert safety and safety[0].action == "crisis_reply" and safety[0].level == "crisis"
    assert events[-1].type == "response.done" and events[-1].model == "fixed:crisis_reply" and "988" in events[-1].text
    assert llm.prompts == []


async def test_a_transient_llm_failure_is_retried_before_anything_was_shown():
    llm = ScriptedLLM(["Here to help."], failures=1)
    _, events = await run_turn(pipeline(llm), "Can you help me plan my week?")
    assert len(llm.prompts) == 2 and events[-1].type == "response.done" and events[-1].text == "Here to help."
    assert not [e for e in events if e.type == "error"]


class Slow(ScriptedLLM):
    """One sentence, then a 30 s stall; `closed` says whether the request was closed."""

    closed = False

    async def stream(self, prompt, stats=None):
        self.prompts.append(prompt)
        try:
            yield "First words. ", 1
            await asyncio.sleep(30)
            yield "never", 1
        finally:
            self.closed = True


async def test_a_cancelled_turn_stops_its_stream():
    llm = Slow([])
    rec = SessionRecord(id="s2", profile_id="wellbeing_coach", user_id=None, persona=PersonaState.initial(0.0))
    events: list[Event] = []
    turn = Turn(pipeline(llm), rec, UserTurn("Tell me something."), face=None, locale="en-US")

    async def consume() -> None:
        async with aclosing(turn.run()) as stream:
            async for e in stream:
                events.append(e)

    task = asyncio.create_task(consume())
    while not any(e.type == "response.delta" for e in events):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert turn.reply.text == "First words. " and events[-1].type == "response.delta" and llm.closed
    assert await turn.cut_short() is None  # saved: history keeps what was sent, marked interrupted
    assert [(m.role, m.content, m.interrupted) for m in rec.history][1:] == [("assistant", "First words. ", True)]


async def test_a_consumer_that_stops_iterating_closes_the_llm_request():
    llm = Slow([])
    rec = SessionRecord(id="s3", profile_id="wellbeing_coach", user_id=None, persona=PersonaState.initial(0.0))
    turn = Turn(pipeline(llm), rec, UserTurn("Tell me something."), face=None, locale="en-US")
    async with aclosing(turn.run()) as stream:
        async for e in stream:
            if e.type == "response.delta":
                break
    assert llm.closed and turn.reply.text == "First words. "
