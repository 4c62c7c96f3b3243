"""Redis as the session store for scale-out: any worker can load any session, so a conversation can move between
workers (or survive one dying) mid-way. Same interface and semantics as the SQLite store.

Layout (prefix `persona:`): `session:{id}` hash (profile_id, user_id, persona, overrides, summary, summarized),
`messages:{id}` list of JSON messages (append-only: RPUSH of the ones not yet written), `user:{uid}` the user's latest
persona. Every key gets the configured TTL refreshed on write (default 30 days), so abandoned sessions expire.

Durability is Redis's: with the default RDB snapshots a Redis restart loses what was written since the last
snapshot; run Redis with `appendonly yes` (the compose file does) to keep every acknowledged write.
"""
from __future__ import annotations

import json

from agent.store import SessionRecord, persona_from_json, persona_to_json
from persona import PersonaState
from prompts import Message


class RedisStore:
    def __init__(self, url: str, prefix: str = "persona:", ttl_s: int = 30 * 86400) -> None:
        import redis.asyncio as redis

        self._r = redis.from_url(url, decode_responses=True, socket_timeout=5, health_check_interval=30)
        self.prefix, self.ttl_s = prefix, ttl_s

    def _k(self, kind: str, ident: str) -> str:
        return f"{self.prefix}{kind}:{ident}"

    async def ping(self) -> bool:
        return bool(await self._r.ping())

    async def save(self, r: SessionRecord) -> None:
        skey, mkey = self._k("session", r.id), self._k("messages", r.id)
        # Ask Redis how many messages it holds (not a local count): after a Redis restart or a move from another
        # worker the answer may differ, and the list must still end up complete.
        done = int(await self._r.llen(mkey))
        new = [json.dumps({"role": m.role, "content": m.content, "interrupted": m.interrupted}) for m in r.history[done:]]
        async with self._r.pipeline(transaction=True) as p:
            p.hset(skey, mapping={"profile_id": r.profile_id, "user_id": r.user_id or "",
                                  "persona": persona_to_json(r.persona), "overrides": json.dumps(r.overrides),
                                  "summary": r.summary, "summarized": r.summarized})
            if new:
                p.rpush(mkey, *new)
            p.expire(skey, self.ttl_s)
            p.expire(mkey, self.ttl_s)
            if r.user_id and r.persona.turns:
                p.set(self._k("user", r.user_id), persona_to_json(r.persona), ex=self.ttl_s)
            await p.execute()

    async def load(self, session_id: str) -> SessionRecord | None:
        h = await self._r.hgetall(self._k("session", session_id))
        if not h:
            return None
        msgs = [json.loads(m) for m in await self._r.lrange(self._k("messages", session_id), 0, -1)]
        return SessionRecord(id=session_id, profile_id=h["profile_id"], user_id=h["user_id"] or None,
                             persona=persona_from_json(h["persona"]),
                             history=[Message(m["role"], m["content"], m["interrupted"]) for m in msgs],
                             overrides=json.loads(h["overrides"]), summary=h["summary"], summarized=int(h["summarized"]))

    async def user_persona(self, user_id: str) -> PersonaState | None:
        raw = await self._r.get(self._k("user", user_id))
        return persona_from_json(raw) if raw else None

    async def aclose(self) -> None:
        await self._r.aclose()
