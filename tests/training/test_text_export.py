"""`train text --export-from`: the shipped int8 artifact is what the exporter makes of the committed un-quantized
weights (per-channel int8, thresholds re-tuned on dev with the int8 model), and a re-export keeps the weights'
training record or refuses to run without one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "perception" / "models" / "text_emotion"
WEIGHTS = ROOT / "bench" / "models" / "text_emotion_fp16.safetensors"
DEV = ROOT.parent / "shared" / "data" / "goemotions" / "dev.tsv"


def _export(out: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "train",
            "text",
            "--export-from",
            str(WEIGHTS),
            "--out",
            str(out),
            "--workdir",
            str(work),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/data/goemotions")
def test_re_exporting_the_committed_weights_reproduces_the_shipped_artifact(tmp_path: Path) -> None:
    from perception.text_model import load_text_model
    from training.goemotions import read_tsv

    out = tmp_path / "text_emotion"
    out.mkdir()
    shutil.copy(SHIPPED / "training.json", out / "training.json")
    r = _export(out, tmp_path / "work")
    assert r.returncode == 0, r.stderr[-2000:]
    texts = read_tsv(DEV).texts[:300]
    shipped_probs, shipped_emb = load_text_model(SHIPPED, threads=2).forward(texts)
    probs, emb = load_text_model(out, threads=2).forward(texts)
    assert abs(probs - shipped_probs).max() < 1e-5 and abs(emb - shipped_emb).max() < 1e-4
    record = json.loads((out / "training.json").read_text())
    shipped = json.loads((SHIPPED / "training.json").read_text())
    assert record["quantization"] == "onnxruntime dynamic int8, per channel"
    assert {k: v for k, v in record.items() if k != "exported"} == {k: v for k, v in shipped.items() if k != "exported"}
    # thresholds are re-tuned on dev with the exported model: within a grid step or two of the shipped ones
    thr = json.loads((out / "thresholds.json").read_text())["thresholds"]
    assert (
        max(abs(a - b) for a, b in zip(thr, json.loads((SHIPPED / "thresholds.json").read_text())["thresholds"]))
        <= 0.05
    )


def test_a_re_export_without_the_training_record_is_refused(tmp_path: Path) -> None:
    r = _export(tmp_path / "empty", tmp_path / "work")
    assert r.returncode != 0
    assert "training.json is missing" in r.stderr
    assert not (tmp_path / "empty" / "model.int8.onnx").exists()
