"""Per-key limits: a token bucket for user turns (typed or spoken) and camera frames, and a cap on concurrent
WebSocket sessions. In one process (`LocalLimiter`), or shared by every worker and pod through Redis when the session
store is Redis (`RedisLimiter`: one Lua script per decision, on Redis's clock, so workers never disagree).

A session's slot in Redis is a member of a sorted set scored by its expiry; the connection refreshes it while it is
open, so a worker that is killed leaks its slots for at most SESSION_TTL_S, never forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent import cancel_and_wait
from server.auth import ApiKey


def text_cost(texts: list[str], explain: bool) -> int:
    """Rate tokens an analysis of `texts` draws: 1 per 16 texts (one batched pass), and with `explain` 1 per text
    (each is read again once per word left out)."""
    return -(-len(texts) // 16) + (len(texts) if explain else 0)


def voice_cost(seconds: float) -> int:
    """1 token per 10 s of audio (speech-to-text and the voice head scale with its length)."""
    return max(1, -(-int(seconds) // 10))


def face_cost(explain: bool) -> int:
    return 4 if explain else 1  # the occlusion grid reads the face 36 more times


log = logging.getLogger(__name__)

SESSION_TTL_S = 60  # a slot not refreshed this long is free again
HEARTBEAT_S = 20


def burst(key: ApiKey) -> int:
    """Ten seconds' worth of the key's rate, at least one."""
    return max(1, key.rate_per_min // 6)


Bucket = Literal["turns", "session"]
SESSION_EVENTS_PER_MIN = 60  # at least: session.start, controls.override, user.audio.end per key, in their own bucket


def bucket_limits(key: ApiKey, bucket: Bucket) -> tuple[float, int]:
    """(tokens per second, burst) of one of the key's buckets. Session events have their own bucket, so that opening a
    session never spends a turn, and a flood of them is still bounded."""
    if bucket == "turns":
        return key.rate_per_min / 60.0, burst(key)
    per_min = max(key.rate_per_min, SESSION_EVENTS_PER_MIN)
    return per_min / 60.0, max(burst(key), SESSION_EVENTS_PER_MIN // 6)


class Limiter(Protocol):
    async def take(self, key: ApiKey, cost: int = 1, bucket: Bucket = "turns") -> bool:
        """`cost` tokens (a turn or frame: 1; analysis: by what it asks for) from one of `key`'s buckets: True if
        within its rate."""
        ...

    def session(self, key: ApiKey) -> Any:
        """An async context manager yielding True while it holds one of the key's session slots, False if all are
        taken (nothing is held then)."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    clock: float


@dataclass
class LocalLimiter:
    """Counters in this process only (one worker, or limits per worker)."""

    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _sessions: dict[str, int] = field(default_factory=dict)

    async def take(self, key: ApiKey, cost: int = 1, bucket: Bucket = "turns") -> bool:
        now = time.monotonic()
        rate, cap = bucket_limits(key, bucket)
        b = self._buckets.get(f"{bucket}:{key.id}")
        if b is None:
            b = self._buckets[f"{bucket}:{key.id}"] = _Bucket(cap, now)
        b.tokens, b.clock = min(cap, b.tokens + (now - b.clock) * rate), now
        if b.tokens < cost:
            return False
        b.tokens -= cost
        return True

    @asynccontextmanager
    async def session(self, key: ApiKey) -> AsyncIterator[bool]:
        if self._sessions.get(key.id, 0) >= key.max_sessions:
            yield False
            return
        self._sessions[key.id] = self._sessions.get(key.id, 0) + 1
        try:
            yield True
        finally:
            self._sessions[key.id] -= 1

    async def aclose(self) -> None:
        pass


_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, cap, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'clock')
local tokens, clock = tonumber(b[1]) or cap, tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - clock) * rate)
local ok = 0
if tokens >= cost then tokens = tokens - cost; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'clock', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
return ok
"""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
"""

_REFRESH = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""


class RedisLimiter:
    """The same limits, shared through Redis by every process that uses it (keys under `persona:limits:`)."""

    def __init__(self, url: str, prefix: str = "persona:limits:") -> None:
        from agent.sessions import redis_client

        self._r: Any = redis_client(url)
        self.prefix = prefix
        self._take = self._r.register_script(_TAKE)
        self._acquire = self._r.register_script(_ACQUIRE)
        self._refresh = self._r.register_script(_REFRESH)

    async def take(self, key: ApiKey, cost: int = 1, bucket: Bucket = "turns") -> bool:
        rate, cap = bucket_limits(key, bucket)
        name = f"{self.prefix}rate:{key.id}" if bucket == "turns" else f"{self.prefix}rate:{bucket}:{key.id}"
        try:
            return bool(await self._take(keys=[name], args=[rate, cap, cost]))
        except Exception:  # fail open: Redis away must not stop conversations (the store reports its own outage)
            log.warning("rate limiter: Redis unreachable; this turn is let through")
            return True

    @asynccontextmanager
    async def session(self, key: ApiKey) -> AsyncIterator[bool]:
        zkey, slot = f"{self.prefix}sessions:{key.id}", uuid.uuid4().hex
        try:
            held = bool(await self._acquire(keys=[zkey], args=[key.max_sessions, slot, SESSION_TTL_S]))
        except Exception:
            log.warning("session limiter: Redis unreachable; this session is let in uncounted")
            yield True
            return
        if not held:
            yield False
            return
        beat = asyncio.create_task(self._heartbeat(zkey, slot), name="session-slot")
        try:
            yield True
        finally:
            await cancel_and_wait(beat)
            try:
                await self._r.zrem(zkey, slot)
            except Exception:
                log.warning("session limiter: could not release a slot; it lapses in %d s", SESSION_TTL_S)

    async def _heartbeat(self, zkey: str, slot: str) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._refresh(keys=[zkey], args=[slot, SESSION_TTL_S])
            except Exception:  # Redis briefly away: the slot may lapse, which frees it rather than leaking it
                pass

    async def aclose(self) -> None:
        await self._r.aclose()


@dataclass(frozen=True, slots=True)
class Quota:
    """What one connection draws on: its key's limits in the server's limiter."""

    key: ApiKey
    limiter: Limiter

    async def take(self, bucket: Bucket = "turns") -> bool:
        return await self.limiter.take(self.key, 1, bucket)


def open_limiter(redis_url: str | None) -> Limiter:
    """Shared through Redis when the session store is Redis (every worker and pod then sees one count), else local."""
    return RedisLimiter(redis_url) if redis_url else LocalLimiter()
