"""`persona-agent forget` erases a user's persona and sessions (or one session) from the configured store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from agent.sessions.store import SessionRecord, SqliteStore
from persona import PersonaState
from prompts import Message

EXE = str(Path(sys.executable).with_name("persona-agent"))


def test_forget_erases_a_user_of_one_tenant_only(tmp_path):
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    for tenant in ("acme", "globex"):
        rec = SessionRecord(
            id=f"{tenant}-1",
            profile_id="companion",
            user_id="ada",
            persona=PersonaState.initial(1.0),
            tenant=tenant,
            history=[Message("user", "hello")],
        )
        asyncio.run(store.save(rec))
    asyncio.run(store.aclose())
    env = {"PERSONA_STORE": "sqlite", "PERSONA_STORE_PATH": str(path), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([EXE, "forget", "--tenant", "acme", "--user", "ada"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "1 sessions" in p.stdout, p.stderr
    p = subprocess.run([EXE, "forget", "--tenant", "acme", "--user", "ada"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "no user" in p.stderr
    store = SqliteStore(path)
    assert store._load("acme-1", "acme") is None and store._load("globex-1", "globex") is not None
    p = subprocess.run(
        [EXE, "forget", "--tenant", "globex", "--session", "globex-1"], env=env, capture_output=True, text=True
    )
    assert p.returncode == 0 and store._load("globex-1", "globex") is None
