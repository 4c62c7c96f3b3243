"""Redis as the session store for scale-out: any worker can load any session, so a conversation can move between
workers (or survive one dying) mid-way. Same interface and semantics as the SQLite store.

Layout (prefix `persona:t:{tenant}:`): `session:{id}` hash (profile_id, user_id, persona, overrides, summary,
summarized, updated_at), `messages:{id}` list of JSON messages (append-only: RPUSH of the ones not yet written),
`user:{uid}` the user's latest persona, `user_sessions:{uid}` the set of their session ids. Every key gets the
retention period (PERSONA_RETENTION_DAYS, default 30 days) as its TTL, refreshed on write, so data expires.

Durability is Redis's: with the default RDB snapshots a Redis restart loses what was written since the last
snapshot; run Redis with `appendonly yes` (the compose file does) to keep every acknowledged write.
"""

from __future__ import annotations

import json
import time
from typing import Any

from agent.sessions.store import (
    LOCAL_TENANT,
    TOMBSTONE_S,
    SessionErased,
    SessionRecord,
    UserExport,
    persona_from_json,
    persona_to_json,
    safe_mode_from_json,
    safe_mode_to_json,
    session_export,
    user_tombstone,
)
from persona import PersonaState
from prompts import Message


def redis_client(url: str) -> Any:
    """An asyncio Redis client with the options every user of Redis here shares (store, leases, limits).

    The pool blocks: when all its connections are busy a caller waits (up to the socket timeout) for one to come back.
    redis-py's default pool raises MaxConnectionsError past 100 connections instead, which under a burst of turns
    failed saves that a moment's wait would have served (bench/load.py, 2 workers at 100 turns/s: 165 errors)."""
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=5, decode_responses=True, socket_timeout=5, health_check_interval=30
    )
    return redis.Redis(connection_pool=pool)


class RedisStore:
    """Keys are namespaced by tenant (`persona:t:{tenant}:…`), so a session id or user id of one tenant cannot name
    another tenant's data. `user_sessions:{uid}` is the set of a user's sessions, for export and erasure."""

    def __init__(self, url: str, prefix: str = "persona:", ttl_s: int = 30 * 86400) -> None:
        self._r: Any = redis_client(url)
        self.prefix, self.ttl_s = prefix, ttl_s

    def _k(self, tenant: str, kind: str, ident: str) -> str:
        return f"{self.prefix}t:{tenant}:{kind}:{ident}"

    async def ping(self) -> bool:
        return bool(await self._r.ping())

    async def writable(self) -> bool:
        return bool(await self._r.set(f"{self.prefix}probe", "1", ex=10))

    async def save(self, r: SessionRecord, rewrite: int | None = None) -> None:
        t = r.tenant
        skey, mkey = self._k(t, "session", r.id), self._k(t, "messages", r.id)
        tombstones = [self._k(t, "erased_session", r.id)]
        if r.user_id:
            tombstones.append(self._k(t, "erased_user", user_tombstone(t, r.user_id)))
        session_gone, *user_gone = await self._r.mget(*tombstones)
        if session_gone is not None or user_gone and user_gone[0] is not None and float(user_gone[0]) >= r.opened_at:
            raise SessionErased(r.id)
        # Ask Redis how many messages it holds (not a local count): after a Redis restart or a move from another
        # worker the answer may differ, and the list must still end up complete.
        done = int(await self._r.llen(mkey))
        new = [
            json.dumps({"role": m.role, "content": m.content, "interrupted": m.interrupted}) for m in r.history[done:]
        ]
        async with self._r.pipeline(transaction=True) as p:
            p.hset(
                skey,
                mapping={
                    "profile_id": r.profile_id,
                    "user_id": r.user_id or "",
                    "persona": persona_to_json(r.persona),
                    "overrides": json.dumps(r.overrides),
                    "summary": r.summary,
                    "summarized": r.summarized,
                    "updated_at": time.time(),
                    "safe_mode": safe_mode_to_json(r.safe_mode),
                },
            )
            if new:
                p.rpush(mkey, *new)
            if rewrite is not None and rewrite < done:
                m = r.history[rewrite]
                p.lset(mkey, rewrite, json.dumps({"role": m.role, "content": m.content, "interrupted": m.interrupted}))
            p.expire(skey, self.ttl_s)
            p.expire(mkey, self.ttl_s)
            if r.user_id:
                ukey = self._k(t, "user_sessions", r.user_id)
                p.sadd(ukey, r.id)
                p.expire(ukey, self.ttl_s)
                if r.persona.turns:
                    p.set(self._k(t, "user", r.user_id), persona_to_json(r.persona), ex=self.ttl_s)
            await p.execute()

    async def _read(self, session_id: str, tenant: str) -> tuple[SessionRecord, float] | None:
        h = await self._r.hgetall(self._k(tenant, "session", session_id))
        if not h:
            return None
        msgs = [json.loads(m) for m in await self._r.lrange(self._k(tenant, "messages", session_id), 0, -1)]
        rec = SessionRecord(
            id=session_id,
            profile_id=h["profile_id"],
            user_id=h["user_id"] or None,
            persona=persona_from_json(h["persona"]),
            history=[Message(m["role"], m["content"], m["interrupted"]) for m in msgs],
            overrides=json.loads(h["overrides"]),
            summary=h["summary"],
            summarized=int(h["summarized"]),
            tenant=tenant,
            safe_mode=safe_mode_from_json(h.get("safe_mode")),
        )
        return rec, float(h.get("updated_at") or 0.0)

    async def load(self, session_id: str, tenant: str = LOCAL_TENANT) -> SessionRecord | None:
        got = await self._read(session_id, tenant)
        return got[0] if got else None

    async def user_persona(self, user_id: str, tenant: str = LOCAL_TENANT) -> PersonaState | None:
        raw = await self._r.get(self._k(tenant, "user", user_id))
        return persona_from_json(raw) if raw else None

    async def delete_session(self, session_id: str, tenant: str) -> bool:
        user = await self._r.hget(self._k(tenant, "session", session_id), "user_id")
        async with self._r.pipeline(transaction=True) as p:
            p.delete(self._k(tenant, "session", session_id), self._k(tenant, "messages", session_id))
            p.set(self._k(tenant, "erased_session", session_id), time.time(), ex=TOMBSTONE_S)
            if user:
                p.srem(self._k(tenant, "user_sessions", user), session_id)
            gone = (await p.execute())[0]
        return bool(gone)

    async def delete_user(self, user_id: str, tenant: str) -> int:
        ukey = self._k(tenant, "user_sessions", user_id)
        ids = sorted(await self._r.smembers(ukey))
        keys = [self._k(tenant, kind, i) for i in ids for kind in ("session", "messages")]
        async with self._r.pipeline(transaction=True) as p:
            p.delete(self._k(tenant, "user", user_id), ukey)
            p.set(self._k(tenant, "erased_user", user_tombstone(tenant, user_id)), time.time(), ex=TOMBSTONE_S)
            for k in keys:
                p.exists(k)
            if keys:
                p.delete(*keys)
            out = await p.execute()
        known = out[0] > 0
        n = sum(out[2 : 2 + len(keys) : 2])  # sessions that still existed
        return n if known or n else -1

    async def export_user(self, user_id: str, tenant: str) -> UserExport | None:
        raw = await self._r.get(self._k(tenant, "user", user_id))
        ids = sorted(await self._r.smembers(self._k(tenant, "user_sessions", user_id)))
        sessions = [session_export(*got) for i in ids if (got := await self._read(i, tenant)) is not None]
        if raw is None and not sessions:
            return None
        return {"user_id": user_id, "persona": json.loads(raw) if raw else None, "sessions": sessions}

    async def purge(self, older_than: float) -> int:
        return 0  # Redis expires every key itself: each write sets the retention period as its TTL

    async def aclose(self) -> None:
        await self._r.aclose()
