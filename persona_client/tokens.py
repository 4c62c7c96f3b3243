"""User tokens: how an operator's backend vouches for a user to a publishable key (docs/security.md).

A page holding a publishable key cannot be trusted to say who its visitor is. The operator's own backend, which
knows (its login), signs a short-lived token with its *secret* key and hands it to the page; the page sends it in
`session.start.user_token` (or `user_token` on /v1/chat/completions), and only then is the conversation stored under
that user and their persona carried across sessions.

    token = user_token(SECRET_KEY, "user-42", ttl_s=3600)   # on your server, never in the page

Format: `ut1.<claims>.<signature>`, both base64url. The claims are JSON {kid, sub, exp}: `kid` names the secret key
(the first 16 hex digits of its SHA-256), `sub` the user id, `exp` the expiry (epoch seconds). The signature is
HMAC-SHA256 over the encoded claims, keyed with the SHA-256 digest of the secret key (what the server stores).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

USER_TOKEN_PREFIX = "ut1."


def b64url(data: bytes) -> str:
    """base64url without padding, as the token's parts are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_payload(key_digest: bytes, body: str) -> str:
    """The signature of an encoded claims part, keyed with the secret key's SHA-256 digest."""
    return b64url(hmac.new(key_digest, body.encode(), hashlib.sha256).digest())


def user_token(secret_key: str, user_id: str, ttl_s: float = 3600.0, now: float | None = None) -> str:
    """A token that vouches for `user_id` until `ttl_s` from now, signed with the tenant's secret key."""
    if not 0 < len(user_id) <= 128:
        raise ValueError("a user id is 1-128 characters")
    digest = hashlib.sha256(secret_key.encode()).digest()
    claims = {"kid": digest.hex()[:16], "sub": user_id, "exp": int((now if now is not None else time.time()) + ttl_s)}
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{USER_TOKEN_PREFIX}{body}.{sign_payload(digest, body)}"
