"""API keys for the tests, made the way an operator makes them: `persona-agent keys create` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXE = str(Path(sys.executable).with_name("persona-agent"))


def create_key(keys: Path, name: str, *options: str) -> str:
    """A new key in the key store at `keys` (options as on the command line: --rate, --sessions, --tenant); the
    token it prints once."""
    p = subprocess.run(
        [EXE, "keys", "create", "--name", name, *options],
        env={"PERSONA_KEYS_PATH": str(keys), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return p.stdout.strip()
