"""Shared fixtures: a real `persona-agent serve` process on loopback, with its real embedded vLLM engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import LiveServer, free_port
from harness import live_server as launch
from perception.environment import configure_third_party

configure_third_party()  # what the CLI does at start-up, for the tests that load models in-process

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
SHARED = ROOT.parent / "shared"
STORE = ARTIFACTS / "sessions.sqlite3"  # the live server's SQLite store, shared with a second worker in tests
THIRD_PARTY_PORT = free_port()  # a plain page on another origin that embeds the widget (tests/web)


@pytest.fixture(scope="session")
def live_server() -> LiveServer:
    # Greedy decoding and a 64-token cap keep the tiny CPU model fast and the replies reproducible.
    STORE.unlink(missing_ok=True)
    with launch(
        ARTIFACTS,
        {
            "PERSONA_LLM_TEMPERATURE": "0",
            "PERSONA_LLM_MAX_TOKENS": "64",
            "PERSONA_STORE_PATH": str(STORE),
            "PERSONA_ALLOWED_ORIGINS": f'["http://127.0.0.1:{THIRD_PARTY_PORT}"]',
        },
    ) as server:
        yield server
