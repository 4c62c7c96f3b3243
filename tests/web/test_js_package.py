"""The npm package clients/js: built from the backend's own files (client.js served at /static, TypeScript types
generated from the committed schema), its types compile against the schema (tsc, strict, with a field the schema
lacks refused), and the package's client runs a turn in Node against the live server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "clients" / "js"
pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="needs Node.js and npm")


def npm(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    r = subprocess.run(
        ["npm", *args], cwd=PKG, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    assert r.returncode == 0, f"npm {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def built() -> Path:
    if not (PKG / "node_modules" / "typescript").exists():
        npm("ci", "--no-audit", "--no-fund")
    npm("run", "build")
    return PKG


def test_types_are_generated_from_the_schema_and_compile(built):
    types = (built / "protocol.d.ts").read_text()
    assert '"session.start"' in types and '"response.done"' in types and "export type ServerEvent" in types
    assert (built / "client.js").read_bytes() == (built.parents[1] / "server" / "static" / "client.js").read_bytes()
    npm("run", "check")  # tsc --noEmit over check.ts, index.d.ts and the generated protocol.d.ts


def test_the_package_lists_what_it_ships(built):
    out = npm("pack", "--dry-run", "--json", "--ignore-scripts")
    assert all(name in out for name in ('"client.js"', '"index.d.ts"', '"protocol.d.ts"', '"package.json"'))
    assert "check.ts" not in out and "node_modules" not in out


@pytest.mark.llm
def test_the_package_client_runs_a_turn_and_a_tool_round_trip_in_node(built, live_server):
    out = npm("test", env={"PERSONA_WS_URL": live_server.ws_url})
    assert "# pass 2" in out and "# fail 0" in out, out
