"""API keys, user tokens and request checks (per-key limits: server/limits.py): the edge's business, settled before
any model runs or any request body is read.

Two kinds of key (docs: docs/security.md):
- **secret** (`--scope full`, `sk_…`): server-side only. Every route, any `user_id` of its tenant, data export and
  erasure, analysis, /metrics and /readyz details.
- **publishable** (`--scope chat`, `pub_…`): may sit in a web page or an app. Conversations only (`/v1/chat`,
  `/v1/chat/completions`); a persona is carried across sessions only for a `user_id` vouched for by a *user token*
  that the operator's backend signs (persona_client.user_token); a session is resumed only with its resume token.

Keys are random 32-byte tokens shown once at creation (`persona-agent keys create`) and stored only as SHA-256
hashes (they are high-entropy, so no salt or slow hash is needed). Clients send them as `Authorization: Bearer <key>`
or `X-API-Key: <key>`; browsers, which cannot set WebSocket headers, as the subprotocol `key.<key>` next to
`persona.v1`. Keys never reach a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from persona_client.tokens import USER_TOKEN_PREFIX, b64url, sign_payload

KEY_PREFIXES = ("sk_", "pub_", "pk_")  # pk_: keys made before scopes (secret)
SUBPROTOCOL = "persona.v1"
REALTIME_SUBPROTOCOL = "realtime"  # what browsers offer to the Realtime API, with `openai-insecure-api-key.<key>`
Scope = Literal["full", "chat"]
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    rate_per_min: int  # user turns and images per minute, per key
    max_sessions: int  # concurrent WebSocket sessions per key
    created_at: float
    revoked: bool = False
    tenant: str = ""  # whose data this key reaches; several keys may share one (default: the key's own id)
    scope: Scope = "full"  # full: secret, server-side; chat: publishable, conversations only

    @property
    def principal(self) -> str:
        """The tenant that owns every session, message and persona made with this key."""
        return self.tenant or self.id

    @property
    def secret(self) -> bool:
        return self.scope == "full"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_COLUMNS = "id, name, rate_per_min, max_sessions, created_at, revoked, tenant, scope"


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        id=row[0],
        name=row[1],
        rate_per_min=row[2],
        max_sessions=row[3],
        created_at=row[4],
        revoked=bool(row[5]),
        tenant=row[6],
        scope=row[7],
    )


class KeyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, "
            "name TEXT NOT NULL, rate_per_min INTEGER NOT NULL, max_sessions INTEGER NOT NULL, "
            "created_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)"
        )
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(api_keys)")}
        if "tenant" not in cols:  # key stores made before tenants: each old key is its own tenant
            self._db.execute("ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")
        if "scope" not in cols:  # key stores made before scopes: every old key is a secret key
            self._db.execute("ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'")
        self._db.execute("CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO secrets VALUES ('resume', ?)", (secrets.token_bytes(32),))
        self._resume_secret: bytes = self._db.execute("SELECT value FROM secrets WHERE name = 'resume'").fetchone()[0]
        self._lock = threading.Lock()

    def create(
        self, name: str, rate_per_min: int = 60, max_sessions: int = 4, tenant: str | None = None, scope: Scope = "full"
    ) -> tuple[ApiKey, str]:
        """A new key; the token is returned once and only its hash is kept. Without `tenant` the key is a tenant
        of its own; keys created with the same tenant see the same sessions and users."""
        if tenant is not None and (not tenant or len(tenant) > 64 or tenant == "local" or ":" in tenant):
            raise ValueError("a tenant is 1-64 characters, without ':', and not 'local'")
        if scope not in ("full", "chat"):
            raise ValueError("a key's scope is full (secret) or chat (publishable)")
        token = ("sk_" if scope == "full" else "pub_") + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(6)
        key = ApiKey(key_id, name, rate_per_min, max_sessions, time.time(), tenant=tenant or key_id, scope=scope)
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (id, hash, name, rate_per_min, max_sessions, created_at, revoked, "
                "tenant, scope) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (key.id, _hash(token), name, rate_per_min, max_sessions, key.created_at, key.tenant, scope),
            )
        return key, token

    def verify(self, token: str | None) -> ApiKey | None:
        if not token or not token.startswith(KEY_PREFIXES) or len(token) > 128:
            return None
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE hash = ?", (_hash(token),)).fetchone()
        if row is None or row[5]:
            return None
        return _key(row)

    def active(self, key_id: str) -> bool:
        """Is this key still valid (not revoked, not deleted)? Live connections ask this now and then."""
        with self._lock:
            row = self._db.execute("SELECT revoked FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return row is not None and not row[0]

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at").fetchall()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            return self._db.execute("UPDATE api_keys SET revoked = 1 WHERE id = ?", (key_id,)).rowcount > 0

    def user_of(self, token: str | None, key: ApiKey, now: float | None = None) -> str | None:
        """The user id a user token vouches for, if it is valid for `key`'s tenant: signed (HMAC-SHA256) by a live
        secret key of that tenant, and not expired. None for anything else (forged, expired, another tenant's)."""
        if not token or not token.startswith(USER_TOKEN_PREFIX) or len(token) > 1024:
            return None
        try:
            body, sig = token[len(USER_TOKEN_PREFIX) :].split(".")
            claims = json.loads(_unb64(body))
            kid, sub, exp = claims["kid"], claims["sub"], claims["exp"]
        except (ValueError, KeyError, TypeError):
            return None
        if (
            not (isinstance(kid, str) and isinstance(sub, str) and isinstance(exp, (int, float)))
            or not 0 < len(sub) <= 128
        ):
            return None
        if exp < (now if now is not None else time.time()) or len(kid) != 16:
            return None
        with self._lock:
            rows = self._db.execute(
                f"SELECT hash, {_COLUMNS} FROM api_keys WHERE substr(hash, 1, 16) = ?", (kid,)
            ).fetchall()
        for row in rows:
            signer = _key(row[1:])
            if signer.revoked or not signer.secret or signer.principal != key.principal:
                continue
            if hmac.compare_digest(sign_payload(bytes.fromhex(row[0]), body), sig):
                return sub
        return None

    def resume_token(self, tenant: str, session_id: str) -> str:
        """What a publishable key must show to resume a session: only session.started hands it out."""
        mac = hmac.new(self._resume_secret, f"{tenant}\x00{session_id}".encode(), hashlib.sha256).digest()
        return b64url(mac[:24])

    def resume_ok(self, tenant: str, session_id: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.resume_token(tenant, session_id), token)


def token_from(headers: Mapping[str, str], subprotocols: list[str] | None = None) -> str | None:
    """The key a request carries: Authorization Bearer, X-API-Key, or a `key.<token>` WebSocket subprotocol (or the
    Realtime API's `openai-insecure-api-key.<token>`)."""
    get = headers.get
    auth = get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if get("x-api-key"):
        return get("x-api-key")
    for p in subprotocols or []:
        if p.startswith("key."):
            return p[4:]
        if p.startswith("openai-insecure-api-key."):  # the Realtime API's browser form
            return p[len("openai-insecure-api-key.") :]
    return None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


def host_name(host_header: str | None) -> str:
    """The name in a Host header, without its port ("[::1]:8000" -> "::1")."""
    h = (host_header or "").strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class Guard:
    """What the server asks of each request: is this Host ours, is auth required, is this key good, is this origin
    allowed, may this key do this."""

    def __init__(
        self,
        keys: KeyStore | None,
        require: bool,
        allowed_origins: tuple[str, ...],
        allowed_hosts: tuple[str, ...] = (),
        recheck_s: float = 30.0,
    ) -> None:
        self.keys, self.require, self.allowed_origins = keys, require, allowed_origins
        self.recheck_s = recheck_s  # a revoked key's open connections end within this (PERSONA_KEY_RECHECK_S)
        # DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 reaches us with Host: evil.example.
        # Without auth only loopback names are served (and any listed); with auth a key is needed anyway, so every
        # Host is served unless the operator lists them.
        self.allowed_hosts = tuple(h.lower() for h in allowed_hosts) or (() if require else LOOPBACK_HOSTS)

    def host_ok(self, host_header: str | None) -> bool:
        if not self.allowed_hosts or "*" in self.allowed_hosts:
            return True
        return host_name(host_header) in self.allowed_hosts

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

    def still_valid(self, key: ApiKey | None) -> bool:
        """Revocation reaches live connections: they ask this every `recheck_s`."""
        return key is None or self.keys is None or self.keys.active(key.id)

    def verified_user(self, key: ApiKey | None, user_id: str | None, user_token: str | None) -> tuple[str | None, bool]:
        """The user id a session may be stored under, and whether the one asked for was refused. A secret key (or no
        auth) may name any user of its tenant; a publishable key only the one a valid user token vouches for."""
        if key is None or key.secret:
            return user_id, False
        vouched = self.keys.user_of(user_token, key) if self.keys is not None else None
        if vouched is None:
            return None, user_id is not None or user_token is not None
        if user_id is not None and user_id != vouched:
            return None, True
        return vouched, False

    def may_resume(self, key: ApiKey | None, tenant: str, session_id: str, resume_token: str | None) -> bool:
        """A publishable key resumes only with the session's own resume token (from session.started)."""
        if key is None or key.secret or self.keys is None:
            return True
        return self.keys.resume_ok(tenant, session_id, resume_token)

    def resume_token(self, tenant: str, session_id: str) -> str | None:
        return self.keys.resume_token(tenant, session_id) if self.keys is not None else None
