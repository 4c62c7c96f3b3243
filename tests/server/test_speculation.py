"""A spoken turn started at the pause (issue #46), over the real WebSocket with the real voice models and engine:
when the speaker pauses mid-sentence the words so far are transcribed at once and a reply is started on them, unseen;
the speaker goes on, the start is discarded, and the user gets one reply, to the whole utterance, with nothing of the
discarded start in the events, the history or the store. A crisis said with a pause in it still gets the fixed reply.
The server's /metrics count the speculative starts by outcome, which shows the start really happened."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from harness import metric_sum
from tests.audio import espeak, silence
from tests.server.test_voice_ws import stream
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm
SPEC = "persona_speculative_turns_total"


def speculated(live_server, outcome: str) -> float:
    return metric_sum(httpx.get(f"{live_server.url}/metrics", timeout=10).text, f'{SPEC}{{outcome="{outcome}"}}')


async def spoken_turn(live_server, first: str, then: str, pause_s: float = 0.8) -> tuple[list[dict], str]:
    """`first`, a pause, `then`, and silence after; every event until the reply is done and 2 s more (a second reply
    would show), and the session id. espeak-ng's flat endings make Smart Turn hear `first` as unfinished."""
    ws = await WS.connect(live_server.ws_url)
    started = await ws.start(profile="companion", consent={"voice": True})
    audio = np.concatenate([silence(0.3), espeak(first), silence(pause_s), espeak(then), silence(2.6)])
    sender = asyncio.create_task(stream(ws, audio))
    events = await ws.until("response.done", timeout=120)
    await sender
    try:
        while True:
            events.append(await ws.recv(timeout=2))
    except TimeoutError:
        pass
    await ws.close()
    return events, started["session_id"]


async def test_a_pause_mid_sentence_gets_one_reply_to_the_whole_utterance(live_server):
    before = speculated(live_server, "discarded")
    # Smart Turn reads this start as unfinished (p 0.08 for espeak-ng's voice): the turn waits, and is started on
    events, sid = await spoken_turn(live_server, "So yesterday I went to the", "doctor about my back and my knees.")
    kinds = [e["type"] for e in events]
    finals = [e for e in events if e["type"] == "transcript" and e["final"]]
    assert len(finals) == 1 and kinds.count("response.done") == 1, kinds
    heard = finals[0]["text"].lower()
    assert "yesterday" in heard and "knees" in heard, heard  # the whole utterance, in one turn
    # nothing of the discarded start: every reply event comes after the whole utterance's transcript, once
    final_at = next(i for i, e in enumerate(events) if e["type"] == "transcript" and e["final"])
    assert final_at < kinds.index("perception") < kinds.index("response.delta")
    assert sum(e["type"] == "perception" and e["modality"] == "text" for e in events) == 1
    assert kinds.count("persona") == 1 and kinds.count("controls") == 1
    assert speculated(live_server, "discarded") >= before + 1  # a reply was started at the pause, and thrown away
    stored = httpx.get(f"{live_server.url}/v1/sessions/{sid}", timeout=10).json()
    users = [m["content"] for m in stored["messages"] if m["role"] == "user"]
    assert len(users) == 1 and "knees" in users[0].lower() and stored["persona"]["turns"] == 1, stored


async def test_a_crisis_said_with_a_pause_still_gets_the_fixed_reply(live_server):
    events, _ = await spoken_turn(
        live_server, "I don't want to be here anymore because", "I have a plan to end my life tonight."
    )
    done = [e for e in events if e["type"] == "response.done"]
    assert done and done[0]["model"] == "fixed:crisis_reply", done
    assert next(e for e in events if e["type"] == "safety")["level"] == "crisis"
