"""Session stores with values: SQLite survives a restart (a new store on the same file) with history, overrides,
summary and persona intact; a user's persona carries across sessions; memory store behaves the same."""

from __future__ import annotations

import numpy as np
import pytest

from agent.sessions.redis import RedisStore
from agent.sessions.store import (
    MemoryStore,
    SessionErased,
    SessionRecord,
    SqliteStore,
    persona_from_json,
    persona_to_json,
)
from fusion import FusedPercept
from perception import LABELS
from persona import PersonaState, PersonaTracker, read_style
from prompts import Message
from tests.redisserver import RedisServer


def sad_persona() -> PersonaState:
    d = np.full(7, 0.02, np.float32)
    d[LABELS.index("sadness")] = 0.88
    p = FusedPercept(d, {"text": 0.6, "voice": 0.0, "face": 0.4}, ("text", "face"), "t", 0.0)
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
        ("user", "hello", False),
        ("assistant", "hi there", True),
        ("user", "second", False),
    ]
    assert got.overrides == {"empathy": 0.9} and got.summary == "The user said: “hello”" and got.summarized == 1
    assert got.persona == rec.persona and got.user_id == "u1"
    assert await store.user_persona("u1") == rec.persona
    assert await store.user_persona("someone-else") is None
    assert await store.load("nope") is None
    await store.aclose()


@pytest.mark.parametrize("kind", ["sqlite", "redis", "memory"])
async def test_a_message_cut_to_what_was_heard_is_rewritten_in_place(tmp_path, kind, request):
    rs = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = make(kind, tmp_path, rs)
    rec = SessionRecord(id="s3", profile_id="companion", user_id=None, persona=PersonaState.initial(0.0))
    rec.history += [Message("user", "tell me a story"), Message("assistant", "Once upon a time. There was a sea.")]
    await store.save(rec)
    rec.history.append(Message("user", "wait"))  # the interruption, already a turn
    rec.history[1] = Message("assistant", "Once upon a time.", interrupted=True)
    await store.save(rec, rewrite=1)
    if kind in ("sqlite", "redis"):
        await store.aclose()
        store = make(kind, tmp_path, rs)
    got = await store.load("s3")
    assert got is not None and [(m.content, m.interrupted) for m in got.history] == [
        ("tell me a story", False),
        ("Once upon a time.", True),
        ("wait", False),
    ]
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
    rec = SessionRecord(
        id="s3", profile_id="companion", user_id="u3", persona=sad_persona(), history=[Message("user", "x")]
    )
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
    rec = SessionRecord(
        id="s4", profile_id="companion", user_id=None, persona=sad_persona(), history=[Message("user", "y")]
    )
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


@pytest.mark.parametrize("kind", ["sqlite", "redis", "memory"])
async def test_tenants_cannot_reach_each_others_sessions_or_users(tmp_path, kind, request):
    rs = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = make(kind, tmp_path, rs)
    a = SessionRecord(id="same-id", profile_id="companion", user_id="ada", persona=sad_persona(), tenant="acme")
    a.history.append(Message("user", "I have been feeling anxious about my divorce."))
    await store.save(a)
    calm = PersonaState.initial(200.0)
    calm = PersonaTracker().update(
        calm,
        FusedPercept(np.full(7, 1 / 7, np.float32), {"text": 1.0, "voice": 0.0, "face": 0.0}, ("text",), "t", 0.0),
        read_style("fine"),
        0.5,
        200.0,
    )
    b = SessionRecord(id="other", profile_id="companion", user_id="ada", persona=calm, tenant="globex")
    await store.save(b)
    assert await store.load("same-id", "globex") is None  # exactly as if it did not exist
    assert (await store.load("same-id", "acme")).history[0].content.startswith("I have been")
    assert await store.user_persona("ada", "acme") == a.persona
    assert await store.user_persona("ada", "globex") == calm  # one user_id, two tenants, two personas
    assert await store.user_persona("ada") is None  # the local tenant has no Ada
    assert await store.delete_session("same-id", "globex") is False  # nor can another tenant erase it
    assert await store.delete_user("ada", "globex") == 1
    assert await store.load("same-id", "acme") is not None and await store.user_persona("ada", "acme") == a.persona


@pytest.mark.parametrize("kind", ["sqlite", "redis", "memory"])
async def test_export_then_erase_leaves_nothing(tmp_path, kind, request):
    rs = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = make(kind, tmp_path, rs)
    for sid in ("s1", "s2"):
        r = SessionRecord(id=sid, profile_id="companion", user_id="ada", persona=sad_persona(), tenant="acme")
        r.history += [Message("user", f"message in {sid}"), Message("assistant", "reply")]
        await store.save(r)
    other = SessionRecord(id="s3", profile_id="companion", user_id="bob", persona=sad_persona(), tenant="acme")
    await store.save(other)
    out = await store.export_user("ada", "acme")
    assert out is not None and out["persona"]["turns"] == sad_persona().turns
    assert sorted(s["session_id"] for s in out["sessions"]) == ["s1", "s2"]
    assert out["sessions"][0]["messages"][0]["content"].startswith("message in")
    assert await store.export_user("ada", "globex") is None
    assert await store.delete_user("ada", "acme") == 2
    assert await store.export_user("ada", "acme") is None and await store.load("s1", "acme") is None
    assert await store.delete_user("ada", "acme") == -1
    assert await store.delete_session("s3", "acme") is True and await store.load("s3", "acme") is None
    if kind == "sqlite":  # the rows are really gone from the file
        import sqlite3

        db = sqlite3.connect(tmp_path / "s.db")
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM personas WHERE user_id = 'ada'").fetchone()[0] == 0
        # what remembers the erasures (so no live session writes them back) names no user: a hash of the user id
        assert db.execute("SELECT COUNT(*) FROM erasures WHERE ident LIKE '%ada%'").fetchone()[0] == 0
    if kind == "redis":  # only bob's persona is left, and the erasures' tombstones, which hold no data and no user id
        import redis

        r = redis.from_url(rs.url, decode_responses=True)
        keys = sorted(k for k in r.keys("*") if ":erased_" not in k)
        assert keys == ["persona:t:acme:user_sessions:bob"] or all("bob" in k for k in keys), keys
        assert not any("ada" in k or "ada" in (r.get(k) or "") for k in r.keys("*erased_*"))


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_retention_purges_what_was_not_written_for_that_long(tmp_path, kind):
    import time

    store = make(kind, tmp_path)
    old = SessionRecord(id="old", profile_id="companion", user_id="ada", persona=sad_persona())
    await store.save(old)
    cutoff = time.time() + 0.001
    time.sleep(0.01)
    new = SessionRecord(id="new", profile_id="companion", user_id=None, persona=sad_persona())
    await store.save(new)
    assert await store.purge(cutoff) == 1
    assert await store.load("old") is None and await store.user_persona("ada") is None
    assert await store.load("new") is not None


async def test_redis_keys_carry_the_retention_ttl(redis_server):
    import redis

    store = RedisStore(redis_server.url, ttl_s=3 * 86400)
    rec = SessionRecord(id="s", profile_id="companion", user_id="ada", persona=sad_persona(), tenant="acme")
    rec.history.append(Message("user", "hello"))
    await store.save(rec)
    r = redis.from_url(redis_server.url, decode_responses=True)
    ttls = [r.ttl(k) for k in r.keys("persona:t:acme:*")]
    assert len(ttls) == 4 and all(3 * 86400 - 60 < t <= 3 * 86400 for t in ttls), ttls


async def test_a_burst_of_saves_beyond_the_redis_pool_waits_instead_of_failing(redis_server):
    """300 sessions saved at once by one worker (a burst of turns ending together) share a pool of 64 connections:
    each save waits for a free connection. redis-py's default pool raised MaxConnectionsError past 100."""
    import asyncio

    store = RedisStore(redis_server.url)
    recs = [SessionRecord(id=f"s{i}", profile_id="companion", user_id=None, persona=sad_persona()) for i in range(300)]
    for r in recs:
        r.history.append(Message("user", f"hello {r.id}"))
    await asyncio.gather(*(store.save(r) for r in recs))
    got = await asyncio.gather(*(store.load(r.id) for r in recs))
    assert [g.history[0].content if g else None for g in got] == [f"hello {r.id}" for r in recs]
    await store.aclose()


def test_sqlite_files_from_before_tenants_open_as_the_local_tenant(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "s.db")
    db.executescript("""
        CREATE TABLE sessions (id TEXT PRIMARY KEY, profile_id TEXT NOT NULL, user_id TEXT, persona TEXT NOT NULL,
            overrides TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', summarized INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL);
        CREATE TABLE messages (session_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
            interrupted INTEGER NOT NULL, PRIMARY KEY (session_id, seq));
        CREATE TABLE users (user_id TEXT PRIMARY KEY, persona TEXT NOT NULL, updated_at REAL NOT NULL);""")
    p = persona_to_json(sad_persona())
    db.execute("INSERT INTO sessions VALUES ('s', 'companion', 'ada', ?, '{}', '', 0, 1.0)", (p,))
    db.execute("INSERT INTO messages VALUES ('s', 0, 'user', 'hello', 0)")
    db.execute("INSERT INTO users VALUES ('ada', ?, 1.0)", (p,))
    db.commit()
    db.close()
    store = SqliteStore(tmp_path / "s.db")
    got = store._load("s", "local")
    assert got is not None and got.history[0].content == "hello" and got.tenant == "local"
    assert store._user("ada", "local") == sad_persona() and store._load("s", "acme") is None


@pytest.mark.parametrize("kind", ["sqlite", "redis", "memory"])
async def test_erasure_sticks_against_a_live_copy(tmp_path, kind, request):
    """A live conversation still holds its record after the user (or the session) is erased: its next save is refused
    (SessionErased), so nothing is written back; a session the same user opens after the erasure saves as usual."""
    rs = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = make(kind, tmp_path, rs)
    live = SessionRecord(id="s1", profile_id="companion", user_id="erin", persona=sad_persona(), tenant="acme")
    live.history.append(Message("user", "my secret"))
    await store.save(live)
    other = SessionRecord(id="s2", profile_id="companion", user_id=None, persona=sad_persona(), tenant="acme")
    await store.save(other)
    assert await store.delete_user("erin", "acme") == 1
    live.history.append(Message("user", "one more turn on the open socket"))
    with pytest.raises(SessionErased):
        await store.save(live)
    assert await store.export_user("erin", "acme") is None and await store.load("s1", "acme") is None
    assert await store.delete_session("s2", "acme") is True
    with pytest.raises(SessionErased):
        await store.save(other)
    assert await store.load("s2", "acme") is None
    again = SessionRecord(id="s3", profile_id="companion", user_id="erin", persona=sad_persona(), tenant="acme")
    await store.save(again)  # opened after the erasure: a new start, stored
    assert (await store.export_user("erin", "acme")) is not None
    await store.aclose()


async def test_sqlite_file_is_private_and_erased_text_leaves_the_wal(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    assert (tmp_path / "s.db").stat().st_mode & 0o777 == 0o600
    rec = SessionRecord(id="s1", profile_id="companion", user_id="erin", persona=sad_persona(), tenant="acme")
    rec.history.append(Message("user", "zebra-marker-4471 is my secret"))
    await store.save(rec)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("s.db")]
    assert any(b"zebra-marker-4471" in p.read_bytes() for p in files)  # written (WAL or main file)
    assert await store.delete_user("erin", "acme") == 1
    for p in tmp_path.iterdir():
        if p.name.startswith("s.db"):
            assert b"zebra-marker-4471" not in p.read_bytes(), p.name
            assert p.stat().st_mode & 0o777 == 0o600, p.name
    await store.aclose()
