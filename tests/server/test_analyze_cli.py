"""`persona-agent analyze text` run as a real subprocess on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("persona-agent"))


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "analyze", "text", *args], capture_output=True, text=True, timeout=300)


def test_txt_one_line_per_input_in_order(tmp_path):
    lines = ["thank you so much!", "I'm furious", "", "what time is it?"]
    f = tmp_path / "msgs.txt"
    f.write_text("\n".join(lines) + "\n")
    r = analyze(str(f))
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["text"] for o in out] == lines
    assert len(out[0]["labels"]) == 28 and len(out[0]["emotions"]) == 7
    assert "gratitude" in out[0]["predicted"] and "anger" in out[1]["predicted"]
    assert abs(sum(out[0]["emotions"].values()) - 1) < 1e-3


def test_csv_tsv_and_output_file(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text('id,text\n1,"Hello, I am so happy today"\n2,this is awful\n')
    tsv = tmp_path / "m.tsv"
    tsv.write_text("I love it\t0\tabc\nso sad\t25\tdef\n")
    out = tmp_path / "out.jsonl"
    r = analyze(str(csv), str(tsv), "--output", str(out), "--explain")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [o["text"] for o in rows] == ["Hello, I am so happy today", "this is awful", "I love it", "so sad"]
    assert rows[2]["explanation"]["tokens"][1]["token"] == "love"


@pytest.mark.parametrize(
    "name, content, msg",
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"\n\n  \n", "empty"),
        ("cols.csv", b"id,message\n1,hi\n", "no `text` column"),
        ("bin.txt", bytes(range(256)) * 10, "binary"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "not UTF-8"),
        ("huge.txt", b"a" * (10 * 1024 * 1024) + b"\n", "over the 100000 limit"),
        ("table.xlsx", b"PK\x03\x04", "unsupported extension"),
    ],
)
def test_bad_files_give_a_clear_error_and_exit_code(tmp_path, name, content, msg):
    f = tmp_path / name
    f.write_bytes(content)
    r = analyze(str(f))
    assert r.returncode == 2 and r.stdout == ""
    assert msg in r.stderr and name in r.stderr and "Traceback" not in r.stderr


def test_missing_file(tmp_path):
    r = analyze(str(tmp_path / "nope.txt"))
    assert r.returncode == 2 and "no such file" in r.stderr
