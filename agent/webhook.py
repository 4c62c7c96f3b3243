"""PERSONA_SAFETY_WEBHOOK: the safety layer tells a human (an operator's on-call, a clinician's queue) when a session
reaches crisis and when its safe mode ends. Sent in the background, retried with backoff, never delaying the reply;
the payload names the session, never what the user wrote.

With PERSONA_SAFETY_WEBHOOK_SECRET set, each request is signed: `X-Persona-Timestamp: <epoch seconds>` and
`X-Persona-Signature: sha256=<hex>`, the HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret (the receiver
recomputes it and refuses stale timestamps), as Stripe and GitHub sign theirs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

import httpx

from agent.events import SafetyEvent

log = logging.getLogger(__name__)
RETRY_BACKOFF_S = (0.5, 2.0, 8.0)  # waits before the 2nd, 3rd and 4th attempt


class SafetyWebhook:
    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        backoff_s: tuple[float, ...] = RETRY_BACKOFF_S,
        secret: str | None = None,
    ) -> None:
        self.url, self.backoff_s, self.secret = url, backoff_s, secret
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, event: SafetyEvent, session_id: str, tenant: str, user_id: str | None, turn: int) -> None:
        """Queue one notification and return at once."""
        payload = {
            "type": "persona.safety",
            "action": event.action,
            "level": event.level,
            "score": event.score,
            "explicit_phrase": event.rule is not None,  # whether a phrase rule fired, not the phrase itself
            "session_id": session_id,
            "tenant": tenant,
            "user_id": user_id,
            "turn": turn,
            "at": round(time.time(), 3),
        }
        task = asyncio.create_task(self._send(payload), name=f"safety-webhook-{session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, payload: dict[str, object]) -> None:
        for attempt in range(len(self.backoff_s) + 1):
            try:
                body = json.dumps(payload).encode()
                r = await self._client.post(
                    self.url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Persona-Attempt": str(attempt + 1),
                        **self.signature(body),
                    },
                )
                if r.status_code < 300:
                    return
                reason = f"HTTP {r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    log.error(
                        "safety webhook refused %s for session %s: %s", payload["action"], payload["session_id"], reason
                    )
                    return
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt < len(self.backoff_s):
                log.warning(
                    "safety webhook attempt %d failed (%s); retry in %.1f s",
                    attempt + 1,
                    reason,
                    self.backoff_s[attempt],
                )
                await asyncio.sleep(self.backoff_s[attempt])
        log.error("safety webhook gave up on %s for session %s", payload["action"], payload["session_id"])

    def signature(self, body: bytes, now: float | None = None) -> dict[str, str]:
        if not self.secret:
            return {}
        ts = str(int(now if now is not None else time.time()))
        mac = hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"X-Persona-Timestamp": ts, "X-Persona-Signature": f"sha256={mac}"}

    async def aclose(self) -> None:
        """Give queued notifications a moment to go out, then stop."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        for t in self._tasks:
            t.cancel()
        await self._client.aclose()
