"""`persona-agent eval strategy` and `eval replies` as a user runs them: on an ESConv-format file in any folder, with
inputs checked before any work, and a message that says what to pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SHARED

EXE = str(Path(sys.executable).with_name("persona-agent"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600)


def test_eval_strategy_on_a_file_elsewhere_prints_every_chooser_and_the_summary_line(tmp_path):
    lines = (SHARED / "data" / "esconv" / "valid.jsonl").read_text().splitlines()[:6]
    (tmp_path / "few.jsonl").write_text("\n".join(lines) + "\n")
    out = cli("eval", "strategy", "--dialogues", str(tmp_path / "few.jsonl"), "--profile", "companion")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0] for line in out.stdout.splitlines() if line.split()}
    assert {"served", "rules", "learned", "majority"} <= rows
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("strategy: served=") and all(
        k in last for k in ("rules=", "learned=", "majority=", "macro_f1=")
    )


def test_eval_commands_check_their_inputs_first(tmp_path):
    (tmp_path / "notes.jsonl").write_text(json.dumps({"text": "not a dialogue"}) + "\n")
    for args in (
        ("eval", "strategy", "--dialogues", str(tmp_path / "missing.jsonl")),
        ("eval", "strategy", "--dialogues", str(tmp_path / "notes.jsonl")),
        ("eval", "strategy", "--dialogues", str(tmp_path / "notes.jsonl"), "--profile", "pirate"),
        ("eval", "replies", "--dialogues", str(tmp_path / "missing.jsonl")),
        ("eval", "replies", "--dialogues", str(tmp_path / "notes.jsonl")),
        ("eval", "replies", "--dialogues", str(SHARED / "data" / "esconv" / "valid.jsonl"), "--strategy-train", "x"),
    ):
        out = cli(*args)
        assert out.returncode == 2 and "error:" in out.stdout + out.stderr, (args, out.stdout, out.stderr)
