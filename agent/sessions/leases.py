"""One writer per session across processes: a live conversation holds its session's lease.

In one process the agent's registry of live conversations is enough (`LocalLeases` grants every lease). With the
Redis store, several workers or pods may be asked for the same session, so each live conversation holds a lease in
Redis (`RedisLeases`): a key naming its holder, refreshed while it lives. A resume that finds the lease held asks
the holder to let go (pub/sub): the holder closes its conversation — saving it and telling its client
`session_taken_over` — and releases, and only then does the new conversation load the record, so no message is
interleaved, duplicated or lost. A holder that died cannot answer; its worker's heartbeat key lapses within
WORKER_TTL_S and the lease is taken from it. If neither happens in time the resume is refused `session_in_use`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LEASE_TTL_S = 30.0  # a lease not refreshed this long lapses (a worker that hangs rather than dies)
WORKER_TTL_S = 4.0  # a worker whose heartbeat is this old is dead: its leases may be taken
TAKEOVER_WAIT_S = 10.0  # how long a resume waits for the holder to let go

LetGo = Callable[[str, str], Awaitable[None]]  # (tenant, session id): close the live conversation here and release
# (tenant, session id or None, user tombstone or None): end the live conversations here that an erasure removed
Erased = Callable[[str, str | None, str | None], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Lease:
    tenant: str
    session_id: str
    token: str  # "<worker>:<uuid>": whose it is


class Leases(Protocol):
    async def take(self, tenant: str, session_id: str) -> Lease | None:
        """The session's lease for a new live conversation here, after asking any other holder to let go; None if
        it would not in time."""
        ...

    async def release(self, lease: Lease) -> None:
        """Idempotent; only ever releases this very lease."""
        ...

    async def start(self, let_go: LetGo, erased: Erased | None = None) -> None:
        """Begin answering other processes' takeover requests with `let_go`, and their erasures with `erased`."""
        ...

    async def announce_erasure(self, tenant: str, session_id: str | None, user: str | None) -> None:
        """Tell every other process that a session (or a user, by tombstone: never the id) was erased."""
        ...

    async def aclose(self) -> None: ...


class LocalLeases:
    """One process: the agent's own registry settles everything, so every lease is granted."""

    async def take(self, tenant: str, session_id: str) -> Lease | None:
        return Lease(tenant, session_id, "local")

    async def release(self, lease: Lease) -> None:
        pass

    async def start(self, let_go: LetGo, erased: Erased | None = None) -> None:
        pass

    async def announce_erasure(self, tenant: str, session_id: str | None, user: str | None) -> None:
        pass

    async def aclose(self) -> None:
        pass


_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder then
  local worker = string.match(holder, '^([^:]+):')
  if redis.call('EXISTS', ARGV[3] .. worker) == 1 then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLeases:
    def __init__(self, url: str, prefix: str = "persona:") -> None:
        from agent.sessions.redis import redis_client

        self._r: Any = redis_client(url)
        self.prefix, self.worker = prefix, uuid.uuid4().hex[:12]
        self.channel = f"{prefix}takeover"
        self.erasures = f"{prefix}erasures"
        self._take, self._release = self._r.register_script(_TAKE), self._r.register_script(_RELEASE)
        self._refresh = self._r.register_script(_REFRESH)
        self._held: dict[tuple[str, str], Lease] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _key(self, tenant: str, session_id: str) -> str:
        return f"{self.prefix}t:{tenant}:lease:{session_id}"

    async def _try(self, key: str, lease: Lease) -> bool:
        return bool(await self._take(keys=[key], args=[lease.token, int(LEASE_TTL_S * 1000), f"{self.prefix}worker:"]))

    async def take(self, tenant: str, session_id: str) -> Lease | None:
        lease = Lease(tenant, session_id, f"{self.worker}:{uuid.uuid4().hex}")
        key = self._key(tenant, session_id)
        if not await self._try(key, lease):
            await self._r.publish(self.channel, f"{tenant}\x00{session_id}")
            deadline = asyncio.get_running_loop().time() + TAKEOVER_WAIT_S
            while True:
                await asyncio.sleep(0.05)
                if await self._try(key, lease):
                    break
                if asyncio.get_running_loop().time() > deadline:
                    return None
        self._held[(tenant, session_id)] = lease
        return lease

    async def release(self, lease: Lease) -> None:
        if self._held.get((lease.tenant, lease.session_id)) == lease:
            del self._held[(lease.tenant, lease.session_id)]
        try:
            await self._release(keys=[self._key(lease.tenant, lease.session_id)], args=[lease.token])
        except Exception:  # Redis away: the lease lapses after LEASE_TTL_S
            log.warning("could not release a session lease; it lapses in %.0f s", LEASE_TTL_S)

    async def start(self, let_go: LetGo, erased: Erased | None = None) -> None:
        await self._beat()
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="lease-heartbeat"),
            asyncio.create_task(self._listen(let_go, erased), name="lease-takeovers"),
        ]

    async def announce_erasure(self, tenant: str, session_id: str | None, user: str | None) -> None:
        try:
            await self._r.publish(self.erasures, json.dumps({"tenant": tenant, "session": session_id, "user": user}))
        except Exception:  # the store's tombstone still refuses their writes; they end at their next one
            log.warning("could not announce an erasure to the other workers")

    async def _beat(self) -> None:
        await self._r.set(f"{self.prefix}worker:{self.worker}", "1", px=int(WORKER_TTL_S * 1000))

    async def _heartbeat(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(WORKER_TTL_S / 4)
            n += 1
            try:
                await self._beat()
                if n % 8 == 0:  # every ~8 s: keep this worker's leases from lapsing
                    for lease in list(self._held.values()):
                        await self._refresh(
                            keys=[self._key(lease.tenant, lease.session_id)],
                            args=[lease.token, int(LEASE_TTL_S * 1000)],
                        )
            except Exception:
                log.warning("session lease heartbeat: Redis unreachable")

    async def _listen(self, let_go: LetGo, erased: Erased | None) -> None:
        while True:
            try:
                pubsub = self._r.pubsub()
                await pubsub.subscribe(self.channel, self.erasures)
                async for msg in pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    if msg.get("channel") == self.erasures:
                        if erased is not None:
                            e = json.loads(msg["data"])
                            await erased(e["tenant"], e["session"], e["user"])
                        continue
                    tenant, _, session_id = str(msg["data"]).partition("\x00")
                    if (tenant, session_id) in self._held:
                        await let_go(tenant, session_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("session takeover listener: Redis unreachable; retrying")
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        await cancel_and_wait(*self._tasks)
        try:
            await self._r.delete(f"{self.prefix}worker:{self.worker}")
            for lease in list(self._held.values()):
                await self.release(lease)
        except Exception:
            pass
        await self._r.aclose()


def open_leases(store: str, redis_url: str | None) -> Leases:
    return RedisLeases(redis_url) if store == "redis" and redis_url else LocalLeases()
