"""API keys and origin checks (per-key limits: server/limits.py): the edge's business, settled before any model runs.

Keys are random 32-byte tokens shown once at creation (`persona-agent keys create`) and stored only as SHA-256
hashes (they are high-entropy, so no salt or slow hash is needed). Clients send them as `Authorization: Bearer <key>`
or `X-API-Key: <key>`; browsers, which cannot set WebSocket headers, as the subprotocol `key.<key>` next to
`persona.v1`. Keys never reach a log.
"""
from __future__ import annotations

from collections.abc import Mapping

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

KEY_PREFIX = "pk_"
SUBPROTOCOL = "persona.v1"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    rate_per_min: int  # user turns and images per minute, per key
    max_sessions: int  # concurrent WebSocket sessions per key
    created_at: float
    revoked: bool = False
    tenant: str = ""  # whose data this key reaches; several keys may share one (default: the key's own id)

    @property
    def principal(self) -> str:
        """The tenant that owns every session, message and persona made with this key."""
        return self.tenant or self.id


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, "
                         "name TEXT NOT NULL, rate_per_min INTEGER NOT NULL, max_sessions INTEGER NOT NULL, "
                         "created_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)")
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(api_keys)")}
        if "tenant" not in cols:  # key stores made before tenants: each old key is its own tenant
            self._db.execute("ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")
        self._lock = threading.Lock()

    def create(self, name: str, rate_per_min: int = 60, max_sessions: int = 4, tenant: str | None = None) -> tuple[ApiKey, str]:
        """A new key; the token is returned once and only its hash is kept. Without `tenant` the key is a tenant
        of its own; keys created with the same tenant see the same sessions and users."""
        if tenant is not None and (not tenant or len(tenant) > 64 or tenant == "local" or ":" in tenant):
            raise ValueError("a tenant is 1-64 characters, without ':', and not 'local'")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(6)
        key = ApiKey(key_id, name, rate_per_min, max_sessions, time.time(), tenant=tenant or key_id)
        with self._lock:
            self._db.execute("INSERT INTO api_keys (id, hash, name, rate_per_min, max_sessions, created_at, revoked, "
                             "tenant) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                             (key.id, _hash(token), name, rate_per_min, max_sessions, key.created_at, key.tenant))
        return key, token

    def verify(self, token: str | None) -> ApiKey | None:
        if not token or not token.startswith(KEY_PREFIX) or len(token) > 128:
            return None
        with self._lock:
            row = self._db.execute("SELECT id, name, rate_per_min, max_sessions, created_at, revoked, tenant FROM api_keys "
                                   "WHERE hash = ?", (_hash(token),)).fetchone()
        if row is None or row[5]:
            return None
        return ApiKey(id=row[0], name=row[1], rate_per_min=row[2], max_sessions=row[3], created_at=row[4], tenant=row[6])

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, rate_per_min, max_sessions, created_at, revoked, tenant FROM api_keys "
                                    "ORDER BY created_at").fetchall()
        return [ApiKey(id=r[0], name=r[1], rate_per_min=r[2], max_sessions=r[3], created_at=r[4], revoked=bool(r[5]),
                       tenant=r[6]) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            return self._db.execute("UPDATE api_keys SET revoked = 1 WHERE id = ?", (key_id,)).rowcount > 0


def token_from(headers: Mapping[str, str], subprotocols: list[str] | None = None) -> str | None:
    """The key a request carries: Authorization Bearer, X-API-Key, or a `key.<token>` WebSocket subprotocol."""
    get = headers.get
    auth = get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if get("x-api-key"):
        return get("x-api-key")
    for p in subprotocols or []:
        if p.startswith("key."):
            return p[4:]
    return None


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")


class Guard:
    """What the server asks of each request: is auth required, is this key good, is this origin allowed."""

    def __init__(self, keys: KeyStore | None, require: bool, allowed_origins: tuple[str, ...]) -> None:
        self.keys, self.require, self.allowed_origins = keys, require, allowed_origins

    def authenticate(self, token: str | None) -> tuple[ApiKey | None, str | None]:
        """(key, None) when allowed — key is None when auth is off and none was sent — or (None, reason)."""
        if token and self.keys is not None:
            key = self.keys.verify(token)
            if key is None:
                return None, "invalid or revoked API key"
            return key, None
        if self.require:
            return None, "an API key is required (Authorization: Bearer <key>, X-API-Key, or the key.<key> subprotocol)"
        return None, None

    def origin_ok(self, origin: str | None, host: str | None) -> bool:
        """Browsers send Origin: same-origin pages and the allowlist pass; non-browser clients send none."""
        if origin is None or origin == "null" and not self.allowed_origins:
            return origin is None
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        bare = origin.split("://", 1)[-1]
        return host is not None and bare == host

