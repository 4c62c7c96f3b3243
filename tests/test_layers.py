"""The layer contract `make test` checks with lint-imports holds, and a backward import breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "perception",
    "fusion",
    "persona",
    "training",
    "prompts",
    "agent",
    "server",
    "harness",
    "tuning",
    "cli",
    "bench",
    "persona_client",
    "integrations",
)
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def _copy(tree: Path) -> None:
    """The source only (no model files): the tree lint-imports reads."""
    for pkg in PACKAGES:
        shutil.copytree(
            ROOT / pkg,
            tree / pkg,
            ignore=lambda d, names: [
                n for n in names if not (n.endswith(".py") or (Path(d) / n).is_dir()) or n == "__pycache__"
            ],
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")


def test_a_backward_import_fails_the_layer_contract(tmp_path):
    _copy(tmp_path)
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    labels = tmp_path / "perception" / "labels.py"
    labels.write_text(labels.read_text() + "\nimport server.app  # a backward import: perception must not see server\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "perception.labels -> server.app" in broken.stdout, broken.stdout


def test_a_route_reaching_into_the_agents_rooms_fails_the_faces_contract(tmp_path):
    _copy(tmp_path)
    route = tmp_path / "server" / "routers" / "sessions.py"
    route.write_text(route.read_text() + "\nfrom agent.turn import Turn  # past the agent's face, into the turn\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "server.routers.sessions -> agent.turn" in broken.stdout, broken.stdout
