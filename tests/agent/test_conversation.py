"""A conversation's lifecycle in-process, in seconds: turns queued and answered in order, a full inbox refusing rather
than dropping, cancel and barge-in keeping what was sent, close saving the record. The real pipeline of
tests/agent/test_turn.py (lexicon perceiver, phrase rules, packaged policy and profiles, memory store) with a scripted
LLM at the `LLMClient` boundary. The same behaviours against the real engine: tests/server/test_chat_ws.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from agent import Conversation, InboxFull, UnknownCall
from agent.batcher import MicroBatcher
from agent.conversation import MAX_PENDING_TURNS, Inputs
from agent.events import Event
from agent.sessions import SessionRecord
from persona import PersonaState
from tests.agent.test_turn import ScriptedLLM, pipeline


class Gated(ScriptedLLM):
    """Writes its first piece, then waits for `go` before the rest."""

    def __init__(self, pieces: list[str]) -> None:
        super().__init__(pieces)
        self.go = asyncio.Event()

    async def stream(self, prompt, stats=None) -> AsyncGenerator[tuple[str, int], None]:
        self.prompts.append(prompt)
        yield self.pieces[0], 1
        await self.go.wait()
        for piece in self.pieces[1:]:
            yield piece, 1
        if stats is not None:
            stats.finish_reason, stats.completion_tokens = "stop", len(self.pieces)


def converse(llm: ScriptedLLM) -> tuple[Conversation, list[Event], SessionRecord]:
    p = pipeline(llm)
    rec = SessionRecord(id="c1", profile_id="wellbeing_coach", user_id=None, persona=PersonaState.initial(0.0))
    events: list[Event] = []

    async def emit(e: Event) -> None:
        events.append(e)

    return Conversation(p, rec, emit, Inputs(), lambda c: None, locale="en-US"), events, rec


async def until(events: list[Event], kind: str, n: int = 1) -> None:
    async with asyncio.timeout(5):
        while sum(e.type == kind for e in events) < n:
            await asyncio.sleep(0.005)


async def test_turns_queue_and_are_answered_in_order():
    conv, events, rec = converse(ScriptedLLM(["Got it. ", "Tell me more."]))
    conv.submit_text("First message.")
    conv.submit_text("Second message.")
    await until(events, "response.done", 2)
    await conv.close()
    assert [m.role for m in rec.history] == ["user", "assistant", "user", "assistant"]
    assert [m.content for m in rec.history if m.role == "user"] == ["First message.", "Second message."]


async def test_a_full_inbox_refuses_the_next_message_and_drops_none():
    llm = Gated(["Working on it. ", "Done."])
    conv, events, rec = converse(llm)
    conv.submit_text("the running one")
    await until(events, "response.delta")
    for i in range(MAX_PENDING_TURNS):
        conv.submit_text(f"waiting {i}")
    with pytest.raises(InboxFull):
        conv.submit_text("one too many")
    llm.go.set()
    await until(events, "response.done", 1 + MAX_PENDING_TURNS)
    await conv.close()
    users = [m.content for m in rec.history if m.role == "user"]
    assert users == ["the running one", *[f"waiting {i}" for i in range(MAX_PENDING_TURNS)]]


@pytest.mark.parametrize(("reason", "kind"), [("cancel", "response.cancelled"), ("barge_in", "response.interrupted")])
async def test_cancel_and_barge_in_keep_what_was_sent_and_the_session_goes_on(reason, kind):
    llm = Gated(["The first sentence. ", "The rest, never sent."])
    conv, events, rec = converse(llm)
    conv.submit_text("Tell me a story.")
    await until(events, "response.delta")
    assert conv.cancel(reason)  # type: ignore[arg-type]
    await until(events, kind)
    stopped = next(e for e in events if e.type == kind)
    assert stopped.text == "The first sentence. "  # type: ignore[union-attr]
    assert [(m.role, m.content, m.interrupted) for m in rec.history] == [
        ("user", "Tell me a story.", False),
        ("assistant", "The first sentence. ", True),
    ]
    llm.go.set()
    conv.submit_text("And now?")  # the conversation lives on
    await until(events, "response.done")
    await conv.close()
    assert [m.role for m in rec.history] == ["user", "assistant", "user", "assistant"]


async def test_close_saves_the_record_and_stops_a_running_turn():
    llm = Gated(["Started. ", "never"])
    conv, events, rec = converse(llm)
    conv.submit_text("Hello?")
    await until(events, "response.delta")
    await conv.close()
    saved = await conv.pipeline.store.load("c1")
    assert saved is not None and [m.role for m in saved.history] == ["user", "assistant"]
    assert not conv.cancel()  # nothing runs any more


async def test_the_batcher_runs_what_arrives_together_as_one_batch_and_fails_it_together():
    calls: list[list[str]] = []

    def upper(items):
        calls.append(list(items))
        if "boom" in items:
            raise ValueError("boom")
        return [s.upper() for s in items]

    batcher: MicroBatcher[str, str] = MicroBatcher(upper, max_batch=8)
    first = asyncio.ensure_future(batcher.submit("a"))
    await asyncio.sleep(0)  # the first runs alone (an idle server does not wait for company) ...
    rest = await asyncio.gather(*(batcher.submit(s) for s in "bcd"))  # ... the next ones arrive together
    assert await first == ("A", 1) and rest == [("B", 3), ("C", 3), ("D", 3)]
    assert calls == [["a"], ["b", "c", "d"]]
    results = await asyncio.gather(batcher.submit("x"), batcher.submit("boom"), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)  # one batch, one failure for all of it
    await batcher.aclose()


class CallsThenAnswers(ScriptedLLM):
    """The first request calls get_order (as the engine's streamed tool-call chunks); later ones answer in text."""

    async def stream(self, prompt, stats=None) -> AsyncGenerator[tuple[str, int], None]:
        self.prompts.append(prompt)
        if len(self.prompts) == 1 and stats is not None:
            stats.add_call_chunk(0, "call_1", "get_order", '{"order_id":')
            stats.add_call_chunk(0, None, None, ' "4471"}')
            stats.finish_reason = "tool_calls"
            return
        for piece in self.pieces:
            yield piece, 1
        if stats is not None:
            stats.finish_reason = "stop"


def offer_tools(conv: Conversation, choice: str = "get_order") -> None:
    from prompts.tools import Tool, ToolUse

    conv.tools = ToolUse((Tool("get_order", "Look up an order"),), choice)


async def test_a_tool_call_pauses_the_turn_and_its_output_takes_it_up_once():
    llm = CallsThenAnswers(["It ships on Thursday."])
    conv, events, rec = converse(llm)
    offer_tools(conv)
    conv.submit_text("Where is my order 4471?")
    await until(events, "response.done")
    call = next(e for e in events if e.type == "response.tool_call")
    assert (call.name, call.arguments, conv.waiting_calls) == ("get_order", '{"order_id": "4471"}', ("call_1",))
    assert llm.prompts[0].tools.choice == "get_order"
    persona_before, n_perceived = rec.persona, sum(e.type == "perception" for e in events)
    assert conv.tool_result("call_1", '{"eta": "Thursday"}')
    await until(events, "response.done", 2)
    await conv.close()
    # taken up: the output quoted after the message, the forced choice released, nothing read or tracked twice
    again = llm.prompts[1]
    assert again.tools.choice == "none" and again.tools.results[0].output == '{"eta": "Thursday"}'
    assert "<tool_results>" in again.messages[-2].content or "<tool_results>" in again.messages[-1].content
    assert sum(e.type == "perception" for e in events) == n_perceived and rec.persona == persona_before
    assert [(m.role, m.content) for m in rec.history] == [
        ("user", "Where is my order 4471?"),
        ("assistant", "It ships on Thursday."),
    ]
    with pytest.raises(UnknownCall):
        conv.tool_result("call_1", "again")


async def test_a_new_message_or_silence_gives_a_paused_turn_up():
    llm = CallsThenAnswers(["Sure."])
    conv, events, rec = converse(llm)
    offer_tools(conv)
    conv.submit_text("Where is my order 4471?")
    await until(events, "response.done")
    conv.submit_text("Never mind.")  # a new message: the waiting call is given up
    await until(events, "response.done", 2)
    with pytest.raises(UnknownCall):
        conv.tool_result("call_1", "{}")
    conv.tool_timeout_s = 0.05
    llm.prompts.clear()  # calls again on the next request
    conv.submit_text("Check order 4471 again, please.")
    await until(events, "error")
    await conv.close()
    err = next(e for e in events if e.type == "error")
    assert err.code == "tool_timeout" and "call_1" in err.message and not conv.waiting_calls


# --- a spoken turn started at a pause (speculation): released when the turn ends on its words, else it leaves nothing


def heard(text: str):
    from agent.voice import Utterance
    from perception.voice.stt import Transcript

    return Utterance(Transcript(text, len(text.split()), 1.0, 10.0, None, None, "scripted"), None)


async def test_a_speculative_turn_released_at_the_end_of_the_turn_is_the_only_reply():
    llm = Gated(["Oh, I am glad. ", "Tell me more."])
    conv, events, rec = converse(llm)
    await conv._on_tentative(heard("I finally finished my thesis"), 0)
    async with asyncio.timeout(5):
        while not llm.prompts:  # the model was asked while the end of the turn was undecided
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert events == [] and rec.history == []  # nothing shown, nothing kept yet
    assert not conv.cancel()  # a speculative turn is not a reply the client can cancel
    await conv._on_final(heard("I finally finished my thesis"), 0)
    llm.go.set()
    await until(events, "response.done")
    await conv.close()
    kinds = [e.type for e in events]
    assert kinds.count("response.done") == 1 and kinds.index("perception") < kinds.index("response.delta")
    assert kinds[0] == "transcript" and len(llm.prompts) == 1
    assert [(m.role, m.content) for m in rec.history] == [
        ("user", "I finally finished my thesis"),
        ("assistant", "Oh, I am glad. Tell me more."),
    ]
    assert rec.persona.turns == 1


async def test_a_speaker_who_goes_on_gets_one_reply_to_the_whole_utterance_and_nothing_of_the_discarded_start():
    llm = Gated(["I hear you. ", "That is a lot."])
    conv, events, rec = converse(llm)
    await conv._on_tentative(heard("My sister called me and"), 3)
    async with asyncio.timeout(5):
        while not llm.prompts:
            await asyncio.sleep(0.005)
    await conv._on_resumed(3)  # the speaker went on: the start is discarded
    await conv._on_final(heard("My sister called me and she is moving to Canada"), 3)
    llm.go.set()
    await until(events, "response.done")
    await asyncio.sleep(0.05)
    await conv.close()
    assert [e.type for e in events].count("response.done") == 1
    assert [m.content for m in rec.history if m.role == "user"] == ["My sister called me and she is moving to Canada"]
    assert rec.persona.turns == 1  # the discarded start never moved the persona
    saved = await conv.pipeline.store.load("c1")
    assert saved is not None and [m.content for m in saved.history if m.role == "user"] == [
        "My sister called me and she is moving to Canada"
    ]
    assert "Canada" in " ".join(m.content for m in llm.prompts[-1].messages)  # the last request: the whole
    assert len(llm.prompts) == 2  # the discarded start asked the model too, and nothing of its reply was shown


async def test_a_final_with_other_words_discards_the_speculative_start():
    llm = ScriptedLLM(["Okay."])
    conv, events, rec = converse(llm)
    await conv._on_tentative(heard("I was thinking"), 5)
    await conv._on_final(heard("I was thinking about my exam"), 5)  # the words changed at the end: discarded
    await until(events, "response.done")
    await conv.close()
    assert [e.type for e in events].count("response.done") == 1
    assert [m.content for m in rec.history if m.role == "user"] == ["I was thinking about my exam"]


async def test_a_call_answered_before_its_reply_is_done_takes_the_turn_up():
    """A client may answer response.tool_call at once, before response.done (client.js does): the turn is paused
    before its calls are sent, so the output is taken, and the turn goes on once the first part has ended."""
    llm = CallsThenAnswers(["It ships on Thursday."])
    conv, events, rec = converse(llm)
    offer_tools(conv)
    answered: list[bool] = []

    async def emit(e: Event) -> None:
        events.append(e)
        if e.type == "response.tool_call":
            answered.append(conv.tool_result(e.call_id, '{"eta": "Thursday"}'))  # type: ignore[attr-defined]

    conv._emit = emit  # the client that answers as soon as the call arrives
    conv.submit_text("Where is my order 4471?")
    await until(events, "response.done", 2)
    await conv.close()
    assert answered == [True] and [e.finish_reason for e in events if e.type == "response.done"] == [  # type: ignore[attr-defined]
        "tool_calls",
        "stop",
    ]
