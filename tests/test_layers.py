"""The layer contract `make test` checks with lint-imports holds, and a backward import breaks it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("perception", "fusion", "persona", "training", "prompts", "agent", "server", "harness", "tuning", "cli",
            "persona_client", "integrations")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def test_a_backward_import_fails_the_layer_contract(tmp_path):
    for pkg in PACKAGES:  # the source only (no model files), so the copy is the tree lint-imports reads
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=lambda d, names: [n for n in names if not (
            n.endswith(".py") or (Path(d) / n).is_dir()) or n == "__pycache__"])
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    labels = tmp_path / "perception" / "labels.py"
    labels.write_text(labels.read_text() + "\nimport server.app  # a backward import: perception must not see server\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "perception.labels -> server.app" in broken.stdout, broken.stdout
