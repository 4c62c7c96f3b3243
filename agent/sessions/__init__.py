"""What a session is and where it is kept: the record, the stores (memory, SQLite, Redis) with export and erasure,
and the leases that keep one writer per session across worker processes."""

from agent.sessions.leases import Lease, Leases, LocalLeases, open_leases
from agent.sessions.redis import RedisStore, redis_client
from agent.sessions.store import (
    LOCAL_TENANT,
    MemoryStore,
    SessionErased,
    SessionExport,
    SessionRecord,
    SessionStore,
    SqliteStore,
    UserExport,
    open_store,
    persona_from_json,
    persona_to_json,
    session_export,
    user_tombstone,
)

__all__ = [
    "LOCAL_TENANT",
    "Lease",
    "Leases",
    "LocalLeases",
    "MemoryStore",
    "RedisStore",
    "SessionErased",
    "SessionExport",
    "SessionRecord",
    "SessionStore",
    "SqliteStore",
    "UserExport",
    "open_leases",
    "open_store",
    "persona_from_json",
    "persona_to_json",
    "redis_client",
    "session_export",
    "user_tombstone",
]
