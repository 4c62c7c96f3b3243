"""The path of one text turn through our code, before the first delta: which of our files it crosses, how many calls
go from one of our files into another (hops).

    python -m bench.turn_path

In-process and deterministic: the client frame is parsed by the server's protocol (server/protocol.py), a
`Conversation` runs the turn on the real pipeline — the lexicon text perceiver (so the text model's own files are
left out of the count), confidence fusion, the packaged policy and profiles, the memory store — and every event goes
out through the WebSocket's serialiser (`to_wire`). The LLM is a **scripted model at the LLMClient boundary** (named so:
it isolates our path from the engine's). A profiler counts calls between our files from the frame's arrival until the
first `response.delta` has been serialised.

The same script runs on an older checkout (PYTHONPATH=<checkout>) for a before/after: it imports what it needs from
where each version keeps it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import agent.turn as turn_module
from agent.batcher import MicroBatcher
from agent.conversation import Conversation, Inputs
from agent.reading import TextReader
from agent.turn import Pipeline, TurnConfig
from fusion import ConfidenceFusion
from perception.text_lexicon import load_lexicon_text_perceiver
from persona import PersonaState, PersonaTracker, load_policy
from prompts import load_profiles
from server import protocol

try:  # this checkout
    from agent.llm import LLMConfig
    from agent.sessions.store import MemoryStore, SessionRecord
except ImportError:  # before agent/ was split by job (issue #42)
    from agent.store import MemoryStore, SessionRecord  # type: ignore[no-redef,import-not-found]

    from agent.llm import LLMConfig  # type: ignore[no-redef]

ROOT = Path(turn_module.__file__).resolve().parents[1]
THIS, EDGE = "bench/turn_path.py", "<edge: the connection's emit>"


class ScriptedLLM:
    """The LLMClient boundary, scripted: three pieces, no engine."""

    def __init__(self) -> None:
        self.config = LLMConfig(base_url="http://scripted.invalid/v1", model="scripted")

    async def stream(self, prompt: Any, stats: Any = None) -> AsyncGenerator[tuple[str, int], None]:
        for piece in ("That sounds ", "like a lot. ", "What helped last time?"):
            await asyncio.sleep(0)
            yield piece, 1
        if stats is not None:
            stats.finish_reason, stats.completion_tokens = "stop", 3

    async def count_tokens(self, prompt: Any) -> int | None:
        return None


class Path_:
    """Calls between our files (not .venv, not the standard library) while `on` is set."""

    def __init__(self) -> None:
        self.on = False
        self.files: Counter[str] = Counter()
        self.hops: Counter[tuple[str, str]] = Counter()

    def ours(self, filename: str) -> str | None:
        p = Path(filename)
        if p == Path(__file__).resolve():
            return THIS
        if not p.is_absolute() or ".venv" in p.parts or ROOT not in p.parents:
            return None
        return str(p.relative_to(ROOT))

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        if not self.on or event != "call":
            return
        callee = self.ours(frame.f_code.co_filename)
        if callee == THIS and frame.f_code.co_name == "emit":
            callee = EDGE  # the connection's outlet: an event handed up to the edge
        if callee is None or callee.startswith("bench/"):
            return
        self.files[callee] += 1
        back = frame.f_back
        caller = self.ours(back.f_code.co_filename) if back is not None else None
        if caller == THIS and back is not None and back.f_code.co_name == "emit":
            caller = EDGE
        if caller is not None and caller != callee and not caller.startswith("bench/"):
            self.hops[(caller, callee)] += 1


async def main() -> None:
    text = load_lexicon_text_perceiver()
    reader = TextReader(text, None, None)
    pipeline = Pipeline(
        reader=reader,
        batcher=MicroBatcher(reader.read_batch),
        fusion=ConfidenceFusion(),
        tracker=PersonaTracker(),
        policy=load_policy(),
        profiles=load_profiles(),
        llm=ScriptedLLM(),  # type: ignore[arg-type]
        store=MemoryStore(),
        config=TurnConfig(controls_at="system"),
    )
    rec = SessionRecord(id="s1", profile_id="wellbeing_coach", user_id=None, persona=PersonaState.initial(0.0))
    path, first = Path_(), asyncio.Event()

    async def emit(event: Any) -> None:
        protocol.to_wire(event)
        if event.type == "response.delta":
            path.on = False
            first.set()

    conv = Conversation(pipeline, rec, emit, Inputs(), lambda c: None, locale="en-US")
    frame = '{"type": "user.text", "text": "Work has been hard this week."}'
    sys.setprofile(path.profile)
    threading.setprofile(path.profile)
    path.on = True
    message = protocol.parse_client(frame)
    conv.submit_text(message.text)  # type: ignore[union-attr]
    await asyncio.wait_for(first.wait(), 10)
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]
    await conv.close()

    edges = sorted(path.hops.items(), key=lambda kv: -kv[1])
    print(
        "one text turn, frame in -> first response.delta serialised (lexicon perceiver; scripted LLM at the boundary)"
    )
    print(
        f"our files crossed: {len(path.files) - (EDGE in path.files)} (and the edge's emit, {path.files[EDGE]} calls)"
    )
    for f in sorted(path.files):
        print(f"  {path.files[f]:4d}  {f}")
    up = sum(n for (a, b), n in path.hops.items() if b == EDGE)
    print(f"calls from the agent up into the edge (events pushed through a callback): {up}")
    print(f"hops (calls from one of our files into another): {sum(path.hops.values())} calls over {len(edges)} edges")
    for (a, b), n in edges:
        print(f"  {n:4d}  {a} -> {b}")


if __name__ == "__main__":
    asyncio.run(main())
