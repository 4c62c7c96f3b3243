"""The adapter trainer end to end on a few ESConv dialogues: a fresh run checkpoints (its state, with the run's
arguments, is written as JSON), exports the best checkpoint with its record, and --export-only writes the same weights
again from the workdir. The real base model, peft and our text model; a few steps only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SHARED


def run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cli.main", "train", "adapter", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])


def test_a_fresh_run_checkpoints_exports_and_exports_again(tmp_path):
    lines = (SHARED / "data" / "esconv" / "valid.jsonl").read_text(encoding="utf-8").splitlines()
    dialogues = tmp_path / "few.jsonl"
    dialogues.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    work, out, again = tmp_path / "work", tmp_path / "out", tmp_path / "again"
    common = [
        "--dialogues",
        str(dialogues),
        "--workdir",
        str(work),
        "--max-examples",
        "4",
        "--accumulate",
        "2",
        "--held-examples",
        "2",
        "--held-pairs",
        "1",
        "--checkpoint-steps",
        "2",
        "--rank",
        "4",
        "--layers",
        "2",
        "--max-len",
        "384",
        "--threads",
        "2",
    ]
    first = run(*common, "--out", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    state = json.loads((work / "state.json").read_text())
    assert state["step"] >= 2 and state["args"]["max_examples"] == 4 and state["args"]["rank"] == 4
    assert all(not isinstance(v, str) or not v.startswith("<") for v in state["args"].values())  # no repr of a function
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == state["step"] and record["best"]["step"] in [h["step"] for h in state["history"]]
    assert record["dialogues"] == ["few.jsonl"] and record["controls_at"] == "end"
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4

    second = run(*common, "--out", str(again), "--export-only")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (again / "adapter_model.safetensors").read_bytes() == (out / "adapter_model.safetensors").read_bytes()
    assert json.loads((again / "training.json").read_text())["steps"] == record["steps"]
