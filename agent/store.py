"""Session records and where they live between connections (in memory here; durable stores plug in behind the same face)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from persona import PersonaState
from prompts import Message


@dataclass(slots=True)
class SessionRecord:
    """The state of one conversation. Mutable, owned by exactly one live Conversation at a time."""

    id: str
    profile_id: str
    user_id: str | None
    persona: PersonaState
    history: list[Message] = field(default_factory=list)
    overrides: dict[str, object] = field(default_factory=dict)


class SessionStore(Protocol):
    async def load(self, session_id: str) -> SessionRecord | None: ...
    async def save(self, record: SessionRecord) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._lock = asyncio.Lock()

    async def load(self, session_id: str) -> SessionRecord | None:
        async with self._lock:
            return self._records.get(session_id)

    async def save(self, record: SessionRecord) -> None:
        async with self._lock:
            self._records[record.id] = record
