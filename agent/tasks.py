"""Tearing tasks down, written once: every owner of background tasks (a conversation, the batcher, the voice and
frame readers, speech synthesis, the server's lifespan) ends them with `cancel_and_wait`."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel what is still running of `tasks` (None entries are skipped) and wait until every one has ended. Their
    outcomes, the cancellation included, are dropped: the caller is tearing them down, not reading them."""
    live = [t for t in tasks if t is not None]
    if all(t.done() for t in live):  # nothing to wait for (and no extra pass of the event loop)
        for t in live:
            if not t.cancelled():
                t.exception()  # retrieved, so asyncio does not log it as never retrieved
        return
    for t in live:
        if not t.done():
            t.cancel()
    await asyncio.gather(*live, return_exceptions=True)
