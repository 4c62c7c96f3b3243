"""Where sessions and per-user personas live between connections: SQLite by default (durable, one file), memory for
throwaway runs. Both behind one interface, so a scale-out backend can plug in the same way.

Only the conversation itself is stored (messages, persona state, overrides, running summary): raw audio and camera
frames never reach a store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from typing_extensions import TypedDict  # pydantic (the REST edge) reads it as a response model on Python 3.11

from persona import PersonaState, SafeMode
from prompts import Message

LOCAL_TENANT = "local"  # the one tenant when auth is off
TOMBSTONE_S = 7 * 86400  # an erasure refuses late writes of what it erased for this long (longer than any live session)


class SessionErased(RuntimeError):
    """The session (or its user) was erased while it was live: it must not be written back. Its conversation ends."""


def user_tombstone(tenant: str, user_id: str) -> str:
    """How an erased user is remembered, so that no live session writes them back: a hash, never the id itself."""
    return hashlib.sha256(f"{tenant}\x00{user_id}".encode()).hexdigest()


@dataclass(slots=True)
class SessionRecord:
    """The state of one conversation. Mutable, owned by exactly one live Conversation at a time."""

    id: str
    profile_id: str
    user_id: str | None
    persona: PersonaState
    history: list[Message] = field(default_factory=list)
    overrides: dict[str, object] = field(default_factory=dict)
    summary: str = ""  # what fell out of the LLM's window, quoted (see Agent.context)
    summarized: int = 0  # how many leading history messages the summary covers
    tenant: str = LOCAL_TENANT  # the principal that created it; no other tenant can load, resume or erase it
    safe_mode: SafeMode = SafeMode()  # sticky safety after a crisis (persona/safemode.py)
    opened_at: float = field(default_factory=time.time)  # when this live copy was made: erasures after it win


class SessionStore(Protocol):
    """Every read and erase names the tenant: a session or user of another tenant does not exist for it."""

    async def load(self, session_id: str, tenant: str = LOCAL_TENANT) -> SessionRecord | None: ...
    async def save(self, record: SessionRecord, rewrite: int | None = None) -> None:
        """Persist the record; with a user_id, its persona also becomes that user's latest (in its tenant). Messages
        are appended; `rewrite` names one already stored that was changed in place (a spoken reply cut to what the
        user heard). Raises SessionErased when the session, or its user, was erased after `record.opened_at`:
        erasure sticks, whatever a live conversation still holds."""
        ...

    async def user_persona(self, user_id: str, tenant: str = LOCAL_TENANT) -> PersonaState | None: ...
    async def delete_session(self, session_id: str, tenant: str) -> bool: ...
    async def delete_user(self, user_id: str, tenant: str) -> int:
        """Erase the user's persona and every session of theirs; the number of sessions erased (-1: no such user)."""
        ...

    async def export_user(self, user_id: str, tenant: str) -> UserExport | None: ...
    async def purge(self, older_than: float) -> int:
        """Retention: erase sessions and personas last written before this time (epoch seconds)."""
        ...

    async def ping(self) -> bool:
        """Does the store answer? (readiness; raises or returns False when it does not)"""
        ...

    async def writable(self) -> bool:
        """Would a write go through now? (readiness: tried and undone; raises or returns False when it would not)"""
        ...

    async def aclose(self) -> None: ...


def persona_to_json(p: PersonaState) -> str:
    return json.dumps(asdict(p))


def safe_mode_to_json(m: SafeMode) -> str:
    return json.dumps(asdict(m))


def safe_mode_from_json(s: str | None) -> SafeMode:
    return SafeMode(**json.loads(s)) if s else SafeMode()


def persona_from_json(s: str) -> PersonaState:
    d = json.loads(s)
    d["distribution"] = tuple(d["distribution"])
    d["gates"] = tuple((m, g) for m, g in d.get("gates", ()))
    d["present"] = tuple(d.get("present", ()))
    return PersonaState(**d)


class ExportedMessage(TypedDict):
    role: str
    content: str
    interrupted: bool


class SessionExport(TypedDict):
    """All that is stored of one session (GET /v1/sessions/{id}, and each session of a user's export)."""

    session_id: str
    profile: str
    user_id: str | None
    updated_at: float | None
    persona: dict[str, Any]
    overrides: dict[str, Any]
    summary: str
    safe_mode: dict[
        str, Any
    ]  # sticky safety after a crisis: active, the turn it began, calm turns since; the last caution turn
    messages: list[ExportedMessage]


class UserExport(TypedDict):
    """All that is stored of one user of one tenant (GET /v1/users/{id}/export)."""

    user_id: str
    persona: dict[str, Any] | None  # the user's latest persona, carried into their next session
    sessions: list[SessionExport]


def session_export(r: SessionRecord, updated_at: float | None = None) -> SessionExport:
    """All that is stored of one session, as JSON-ready data."""
    return {
        "session_id": r.id,
        "profile": r.profile_id,
        "user_id": r.user_id,
        "updated_at": updated_at,
        "persona": asdict(r.persona),
        "overrides": dict(r.overrides),
        "summary": r.summary,
        "safe_mode": asdict(r.safe_mode),
        "messages": [{"role": m.role, "content": m.content, "interrupted": m.interrupted} for m in r.history],
    }


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], tuple[SessionRecord, float]] = {}
        self._users: dict[tuple[str, str], tuple[PersonaState, float]] = {}
        self._erased: dict[tuple[str, str], float] = {}  # (tenant, session id) or ("user", tombstone) -> when
        self._lock = asyncio.Lock()

    def _check(self, record: SessionRecord) -> None:
        if (
            (record.tenant, record.id) in self._erased
            or record.user_id
            and self._erased.get(("user", user_tombstone(record.tenant, record.user_id)), 0.0) >= record.opened_at
        ):
            raise SessionErased(record.id)

    async def load(self, session_id: str, tenant: str = LOCAL_TENANT) -> SessionRecord | None:
        async with self._lock:
            got = self._records.get((tenant, session_id))
            return got[0] if got else None

    async def save(self, record: SessionRecord, rewrite: int | None = None) -> None:
        async with self._lock:
            self._check(record)
            now = time.time()
            self._records[(record.tenant, record.id)] = (record, now)
            if record.user_id and record.persona.turns:
                self._users[(record.tenant, record.user_id)] = (record.persona, now)

    async def user_persona(self, user_id: str, tenant: str = LOCAL_TENANT) -> PersonaState | None:
        async with self._lock:
            got = self._users.get((tenant, user_id))
            return got[0] if got else None

    async def delete_session(self, session_id: str, tenant: str) -> bool:
        async with self._lock:
            self._erased[(tenant, session_id)] = time.time()
            return self._records.pop((tenant, session_id), None) is not None

    async def delete_user(self, user_id: str, tenant: str) -> int:
        async with self._lock:
            self._erased[("user", user_tombstone(tenant, user_id))] = time.time()
            known = self._users.pop((tenant, user_id), None) is not None
            gone = [k for k, (r, _) in self._records.items() if k[0] == tenant and r.user_id == user_id]
            for k in gone:
                del self._records[k]
                self._erased[k] = time.time()
            return len(gone) if known or gone else -1

    async def export_user(self, user_id: str, tenant: str) -> UserExport | None:
        async with self._lock:
            persona = self._users.get((tenant, user_id))
            sessions = [
                session_export(r, t) for k, (r, t) in self._records.items() if k[0] == tenant and r.user_id == user_id
            ]
        if persona is None and not sessions:
            return None
        return {"user_id": user_id, "persona": asdict(persona[0]) if persona else None, "sessions": sessions}

    async def purge(self, older_than: float) -> int:
        async with self._lock:
            old = [k for k, (_, t) in self._records.items() if t < older_than]
            for k in old:
                del self._records[k]
            for k in [k for k, (_, t) in self._users.items() if t < older_than]:
                del self._users[k]
            return len(old)

    async def ping(self) -> bool:
        return True

    async def writable(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, profile_id TEXT NOT NULL, user_id TEXT, persona TEXT NOT NULL, overrides TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '', summarized INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'local', safe_mode TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    interrupted INTEGER NOT NULL, PRIMARY KEY (session_id, seq));
CREATE TABLE IF NOT EXISTS personas (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, persona TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, user_id));
CREATE TABLE IF NOT EXISTS erasures (
    tenant TEXT NOT NULL, kind TEXT NOT NULL, ident TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (tenant, kind, ident));
"""


class SqliteStore:
    """One SQLite file (WAL mode). Calls run in a worker thread; one connection, serialised by a lock. Messages
    are append-only: a save writes the session row and the messages not yet written, in one transaction. Every
    query that reads or erases names the tenant next to the id."""

    def __init__(self, path: Path, busy_timeout_s: float = 2.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if not path.exists():  # private from the start: SQLite gives its -wal and -shm files the same mode
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        # Erased rows are overwritten with zeros in the file (and its WAL), not just unlinked from the b-tree.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._written: dict[str, int] = {}  # session id -> messages already in the file

    def _migrate(self) -> None:
        """Files written before tenants: their sessions and user personas belong to the local tenant."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(sessions)")} if "sessions" in tables else set()
        if "sessions" in tables and "tenant" not in columns:
            self._db.execute("ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'local'")
        if "sessions" in tables and "safe_mode" not in columns:  # files written before sticky safe mode
            self._db.execute("ALTER TABLE sessions ADD COLUMN safe_mode TEXT NOT NULL DEFAULT ''")
        if "users" in tables:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO personas SELECT 'local', user_id, persona, updated_at FROM users")
            self._db.execute("DROP TABLE users")

    def _save(self, r: SessionRecord, rewrite: int | None = None) -> None:
        with self._lock:
            db = self._db
            done = self._written.get(r.id)
            if done is None:
                done = db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (r.id,)).fetchone()[0]
            if rewrite is not None:
                done = min(done, rewrite)
            now = time.time()
            db.execute("BEGIN IMMEDIATE")
            try:
                owner = db.execute("SELECT tenant FROM sessions WHERE id = ?", (r.id,)).fetchone()
                if owner is not None and owner[0] != r.tenant:
                    raise PermissionError("session id belongs to another tenant")
                erased = db.execute(
                    "SELECT 1 FROM erasures WHERE tenant = ? AND (kind = 'session' AND ident = ? OR "
                    "kind = 'user' AND ident = ? AND at >= ?)",
                    (r.tenant, r.id, user_tombstone(r.tenant, r.user_id) if r.user_id else "", r.opened_at),
                ).fetchone()
                if erased is not None:
                    raise SessionErased(r.id)
                db.execute(
                    "INSERT OR REPLACE INTO sessions (id, profile_id, user_id, persona, overrides, summary, "
                    "summarized, updated_at, tenant, safe_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.id,
                        r.profile_id,
                        r.user_id,
                        persona_to_json(r.persona),
                        json.dumps(r.overrides),
                        r.summary,
                        r.summarized,
                        now,
                        r.tenant,
                        safe_mode_to_json(r.safe_mode),
                    ),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?)",
                    [(r.id, i, m.role, m.content, int(m.interrupted)) for i, m in enumerate(r.history[done:], done)],
                )
                if r.user_id and r.persona.turns:
                    db.execute(
                        "INSERT OR REPLACE INTO personas VALUES (?, ?, ?, ?)",
                        (r.tenant, r.user_id, persona_to_json(r.persona), now),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._written[r.id] = len(r.history)

    def _read(self, session_id: str, tenant: str) -> tuple[SessionRecord, float] | None:
        row = self._db.execute(
            "SELECT profile_id, user_id, persona, overrides, summary, summarized, updated_at, "
            "safe_mode FROM sessions WHERE id = ? AND tenant = ?",
            (session_id, tenant),
        ).fetchone()
        if row is None:
            return None
        msgs = self._db.execute(
            "SELECT role, content, interrupted FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
        ).fetchall()
        self._written[session_id] = len(msgs)
        rec = SessionRecord(
            id=session_id,
            profile_id=row[0],
            user_id=row[1],
            persona=persona_from_json(row[2]),
            history=[Message(role, content, bool(i)) for role, content, i in msgs],
            overrides=json.loads(row[3]),
            summary=row[4],
            summarized=row[5],
            tenant=tenant,
            safe_mode=safe_mode_from_json(row[7]),
        )
        return rec, row[6]

    def _load(self, session_id: str, tenant: str) -> SessionRecord | None:
        with self._lock:
            got = self._read(session_id, tenant)
        return got[0] if got else None

    def _user(self, user_id: str, tenant: str) -> PersonaState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT persona FROM personas WHERE tenant = ? AND user_id = ?", (tenant, user_id)
            ).fetchone()
        return persona_from_json(row[0]) if row else None

    def _erase(self, where: str, params: tuple[object, ...]) -> int:
        """Erase the sessions matching `where` and their messages, in one transaction; how many sessions."""
        db = self._db
        rows = db.execute(f"SELECT id, tenant FROM sessions WHERE {where}", params).fetchall()
        ids = [i for i, _ in rows]
        db.executemany("DELETE FROM messages WHERE session_id = ?", [(i,) for i in ids])
        db.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in ids])
        now = time.time()
        db.executemany("INSERT OR REPLACE INTO erasures VALUES (?, 'session', ?, ?)", [(t, i, now) for i, t in rows])
        for i in ids:
            self._written.pop(i, None)
        return len(ids)

    def _delete_session(self, session_id: str, tenant: str) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            n = self._erase("id = ? AND tenant = ?", (session_id, tenant))
            # a live session not yet stored (or another worker's) must not be written back either
            self._db.execute(
                "INSERT OR REPLACE INTO erasures VALUES (?, 'session', ?, ?)", (tenant, session_id, time.time())
            )
            self._db.execute("COMMIT")
            self._scrub()
        return n > 0

    def _delete_user(self, user_id: str, tenant: str) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            known = self._db.execute(
                "DELETE FROM personas WHERE tenant = ? AND user_id = ?", (tenant, user_id)
            ).rowcount
            n = self._erase("tenant = ? AND user_id = ?", (tenant, user_id))
            self._db.execute(
                "INSERT OR REPLACE INTO erasures VALUES (?, 'user', ?, ?)",
                (tenant, user_tombstone(tenant, user_id), time.time()),
            )
            self._db.execute("COMMIT")
            self._scrub()
        return n if known or n else -1

    def _scrub(self) -> None:
        """After an erasure: copy the WAL into the main file (where secure_delete zeroed the rows) and truncate it,
        so the erased text is in neither file. Best effort: a reader holding an old snapshot can delay it."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    def _export_user(self, user_id: str, tenant: str) -> UserExport | None:
        with self._lock:
            row = self._db.execute(
                "SELECT persona FROM personas WHERE tenant = ? AND user_id = ?", (tenant, user_id)
            ).fetchone()
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM sessions WHERE tenant = ? AND user_id = ? ORDER BY updated_at", (tenant, user_id)
                )
            ]
            sessions = [session_export(*got) for i in ids if (got := self._read(i, tenant)) is not None]
        if row is None and not sessions:
            return None
        return {"user_id": user_id, "persona": json.loads(row[0]) if row else None, "sessions": sessions}

    def _purge(self, older_than: float) -> int:
        with self._lock:
            self._db.execute("BEGIN")
            n = self._erase("updated_at < ?", (older_than,))
            self._db.execute("DELETE FROM personas WHERE updated_at < ?", (older_than,))
            self._db.execute("DELETE FROM erasures WHERE at < ?", (time.time() - TOMBSTONE_S,))
            self._db.execute("COMMIT")
            self._scrub()
        return n

    async def load(self, session_id: str, tenant: str = LOCAL_TENANT) -> SessionRecord | None:
        return await asyncio.to_thread(self._load, session_id, tenant)

    async def save(self, record: SessionRecord, rewrite: int | None = None) -> None:
        await asyncio.to_thread(self._save, record, rewrite)

    async def user_persona(self, user_id: str, tenant: str = LOCAL_TENANT) -> PersonaState | None:
        return await asyncio.to_thread(self._user, user_id, tenant)

    async def delete_session(self, session_id: str, tenant: str) -> bool:
        return await asyncio.to_thread(self._delete_session, session_id, tenant)

    async def delete_user(self, user_id: str, tenant: str) -> int:
        return await asyncio.to_thread(self._delete_user, user_id, tenant)

    async def export_user(self, user_id: str, tenant: str) -> UserExport | None:
        return await asyncio.to_thread(self._export_user, user_id, tenant)

    async def purge(self, older_than: float) -> int:
        return await asyncio.to_thread(self._purge, older_than)

    def _ping(self) -> bool:
        with self._lock:
            return bool(self._db.execute("SELECT 1").fetchone() == (1,))

    async def ping(self) -> bool:
        return await asyncio.to_thread(self._ping)

    def _writable(self) -> bool:
        """Take the write lock on a connection of its own, briefly, and let go: a lock held elsewhere fails it."""
        db = sqlite3.connect(str(self.path), timeout=0.5, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return True
        except sqlite3.Error:
            return False
        finally:
            db.close()

    async def writable(self) -> bool:
        return await asyncio.to_thread(self._writable)

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()


def open_store(kind: str, path: Path, redis_url: str | None = None, retention_s: float | None = None) -> SessionStore:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(path)
    if kind == "redis":
        from agent.sessions.redis import RedisStore

        if not redis_url:
            raise ValueError("store=redis needs a redis URL (PERSONA_REDIS_URL)")
        return RedisStore(redis_url, ttl_s=int(retention_s) if retention_s else 30 * 86400)
    raise ValueError(f"unknown store {kind!r}; expected sqlite, redis or memory")
