"""Where sessions and per-user personas live between connections: SQLite by default (durable, one file), memory for
throwaway runs. Both behind one interface, so a scale-out backend can plug in the same way.

Only the conversation itself is stored (messages, persona state, overrides, running summary): raw audio and camera
frames never reach a store.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from persona import PersonaState
from prompts import Message


@dataclass(slots=True)
class SessionRecord:
    """The state of one conversation. Mutable, owned by exactly one live Conversation at a time."""

    id: str
    profile_id: str
    user_id: str | None
    persona: PersonaState
    history: list[Message] = field(default_factory=list)
    overrides: dict[str, object] = field(default_factory=dict)
    summary: str = ""  # what fell out of the LLM's window, condensed (see Agent.window)
    summarized: int = 0  # how many leading history messages the summary covers


class SessionStore(Protocol):
    async def load(self, session_id: str) -> SessionRecord | None: ...
    async def save(self, record: SessionRecord) -> None:
        """Persist the record; with a user_id, its persona also becomes that user's latest."""
        ...
    async def user_persona(self, user_id: str) -> PersonaState | None: ...
    async def aclose(self) -> None: ...


def persona_to_json(p: PersonaState) -> str:
    return json.dumps(asdict(p))


def persona_from_json(s: str) -> PersonaState:
    d = json.loads(s)
    d["distribution"] = tuple(d["distribution"])
    d["gates"] = tuple((m, g) for m, g in d.get("gates", ()))
    d["present"] = tuple(d.get("present", ()))
    return PersonaState(**d)


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._users: dict[str, PersonaState] = {}
        self._lock = asyncio.Lock()

    async def load(self, session_id: str) -> SessionRecord | None:
        async with self._lock:
            return self._records.get(session_id)

    async def save(self, record: SessionRecord) -> None:
        async with self._lock:
            self._records[record.id] = record
            if record.user_id and record.persona.turns:
                self._users[record.user_id] = record.persona

    async def user_persona(self, user_id: str) -> PersonaState | None:
        async with self._lock:
            return self._users.get(user_id)

    async def aclose(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, profile_id TEXT NOT NULL, user_id TEXT, persona TEXT NOT NULL, overrides TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '', summarized INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    interrupted INTEGER NOT NULL, PRIMARY KEY (session_id, seq));
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, persona TEXT NOT NULL, updated_at REAL NOT NULL);
"""


class SqliteStore:
    """One SQLite file (WAL mode). Calls run in a worker thread; one connection, serialised by a lock. Messages
    are append-only: a save writes the session row and the messages not yet written, in one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._written: dict[str, int] = {}  # session id -> messages already in the file

    def _save(self, r: SessionRecord) -> None:
        with self._lock:
            db = self._db
            done = self._written.get(r.id)
            if done is None:
                done = db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (r.id,)).fetchone()[0]
            db.execute("BEGIN")
            try:
                db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (r.id, r.profile_id, r.user_id, persona_to_json(r.persona), json.dumps(r.overrides),
                            r.summary, r.summarized, time.time()))
                db.executemany("INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?)",
                               [(r.id, i, m.role, m.content, int(m.interrupted)) for i, m in enumerate(r.history[done:], done)])
                if r.user_id and r.persona.turns:
                    db.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?)", (r.user_id, persona_to_json(r.persona), time.time()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._written[r.id] = len(r.history)

    def _load(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._db.execute("SELECT profile_id, user_id, persona, overrides, summary, summarized FROM sessions "
                                   "WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            msgs = self._db.execute("SELECT role, content, interrupted FROM messages WHERE session_id = ? ORDER BY seq",
                                    (session_id,)).fetchall()
        self._written[session_id] = len(msgs)
        return SessionRecord(id=session_id, profile_id=row[0], user_id=row[1], persona=persona_from_json(row[2]),
                             history=[Message(role, content, bool(i)) for role, content, i in msgs],
                             overrides=json.loads(row[3]), summary=row[4], summarized=row[5])

    def _user(self, user_id: str) -> PersonaState | None:
        with self._lock:
            row = self._db.execute("SELECT persona FROM users WHERE user_id = ?", (user_id,)).fetchone()
        return persona_from_json(row[0]) if row else None

    async def load(self, session_id: str) -> SessionRecord | None:
        return await asyncio.to_thread(self._load, session_id)

    async def save(self, record: SessionRecord) -> None:
        await asyncio.to_thread(self._save, record)

    async def user_persona(self, user_id: str) -> PersonaState | None:
        return await asyncio.to_thread(self._user, user_id)

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()


def open_store(kind: str, path: Path, redis_url: str | None = None) -> SessionStore:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(path)
    if kind == "redis":
        from agent.store_redis import RedisStore

        if not redis_url:
            raise ValueError("store=redis needs a redis URL (PERSONA_REDIS_URL)")
        return RedisStore(redis_url)
    raise ValueError(f"unknown store {kind!r}; expected sqlite, redis or memory")
