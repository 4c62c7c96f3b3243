"""Session stores with values: SQLite survives a restart (a new store on the same file) with history, overrides,
summary and persona intact; a user's persona carries across sessions; memory store behaves the same."""
from __future__ import annotations

import numpy as np
import pytest

from agent.store import MemoryStore, SessionRecord, SqliteStore, persona_from_json, persona_to_json
from agent.store_redis import RedisStore
from tests.redisserver import RedisServer
from fusion import FusedPercept
from perception import LABELS
from persona import PersonaState, PersonaTracker, read_style
from prompts import Message


def sad_persona() -> PersonaState:
    d = np.full(7, 0.02, np.float32)
    d[LABELS.index("sadness")] = 0.88
    p = FusedPercept(d, d, {"text": 0.6, "voice": 0.0, "face": 0.4}, ("text", "face"), "t", 0.0)
    return PersonaTracker().update(PersonaState.initial(100.0), p, read_style("I feel low today."), 0.8, 100.0)


def test_persona_json_round_trip():
    p = sad_persona()
    assert persona_from_json(persona_to_json(p)) == p


@pytest.fixture
def redis_server(tmp_path):
    with RedisServer(tmp_path / "redis") as r:
        yield r


def make(kind: str, tmp_path, redis_server=None):
    if kind == "sqlite":
        return SqliteStore(tmp_path / "s.db")
    if kind == "redis":
        return RedisStore(redis_server.url)
    return MemoryStore()


@pytest.mark.parametrize("kind", ["sqlite", "redis", "memory"])
async def test_store_round_trip_and_user_persona(tmp_path, kind, request):
    rs = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = make(kind, tmp_path, rs)
    rec = SessionRecord(id="s1", profile_id="companion", user_id="u1", persona=sad_persona())
    rec.history += [Message("user", "hello"), Message("assistant", "hi there", interrupted=True)]
    rec.overrides["empathy"] = 0.9
    await store.save(rec)
    rec.history.append(Message("user", "second"))
    rec.summary, rec.summarized = "The user said: “hello”", 1
    await store.save(rec)
    if kind in ("sqlite", "redis"):  # another process: a new store on the same file / server
        await store.aclose()
        store = make(kind, tmp_path, rs)
    got = await store.load("s1")
    assert got is not None
    assert [(m.role, m.content, m.interrupted) for m in got.history] == [
        ("user", "hello", False), ("assistant", "hi there", True), ("user", "second", False)]
    assert got.overrides == {"empathy": 0.9} and got.summary == "The user said: “hello”" and got.summarized == 1
    assert got.persona == rec.persona and got.user_id == "u1"
    assert await store.user_persona("u1") == rec.persona
    assert await store.user_persona("someone-else") is None
    assert await store.load("nope") is None
    await store.aclose()


async def test_sqlite_appends_only_new_messages(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    rec = SessionRecord(id="s2", profile_id="companion", user_id=None, persona=PersonaState.initial(0.0))
    for i in range(5):
        rec.history.append(Message("user", f"m{i}"))
        await store.save(rec)
    rows = store._db.execute("SELECT seq, content FROM messages WHERE session_id = 's2' ORDER BY seq").fetchall()
    assert rows == [(i, f"m{i}") for i in range(5)]
    # a persona with no turns is not recorded for the user
    assert await store.user_persona("") is None
    await store.aclose()


async def test_redis_restart_keeps_sessions_with_appendonly(tmp_path):
    """With appendonly (as deploy/compose.yaml runs it) a Redis restart loses nothing acknowledged."""
    r = RedisServer(tmp_path / "aof", appendonly=True).start()
    store = RedisStore(r.url)
    rec = SessionRecord(id="s3", profile_id="companion", user_id="u3", persona=sad_persona(), history=[Message("user", "x")])
    await store.save(rec)
    await store.aclose()
    r.stop()
    r.start()  # same port, same directory
    store = RedisStore(r.url)
    got = await store.load("s3")
    assert got is not None and got.history[0].content == "x" and await store.user_persona("u3") == rec.persona
    await store.aclose()
    r.stop()


async def test_redis_restart_without_persistence_forgets_and_says_so(tmp_path):
    """Without persistence a restart empties Redis: load says None (the server answers unknown_session), and the
    store keeps working once Redis is back."""
    r = RedisServer(tmp_path / "volatile", appendonly=False).start()
    store = RedisStore(r.url)
    rec = SessionRecord(id="s4", profile_id="companion", user_id=None, persona=sad_persona(), history=[Message("user", "y")])
    await store.save(rec)
    r.stop()
    with pytest.raises(Exception):  # Redis down: a clear connection error, not a hang
        await store.load("s4")
    r.start()
    assert await store.load("s4") is None
    rec.history.append(Message("user", "z"))
    await store.save(rec)  # the live session saves again: the whole history is written back, not just "z"
    assert [m.content for m in (await store.load("s4")).history] == ["y", "z"]
    await store.aclose()
    r.stop()
