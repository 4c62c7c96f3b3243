"""Shared fixtures: a real `persona-agent serve` process on loopback, with its real embedded vLLM engine."""
from __future__ import annotations

from pathlib import Path

import pytest

from server.launch import LiveServer, live_server as launch

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def live_server() -> LiveServer:
    # Greedy decoding and a 64-token cap keep the tiny CPU model fast and the replies reproducible.
    with launch(ARTIFACTS, {"PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": "64"}) as server:
        yield server
