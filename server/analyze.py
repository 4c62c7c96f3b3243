"""`persona-agent analyze text FILE`: JSONL, one line per input message, in order."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from agent import TextAnalysis, analyze_texts, load_text_model
from server.batchfiles import InputFileError, read_messages


def text_result(a: TextAnalysis) -> dict[str, object]:
    out: dict[str, object] = {"text": a.text, "labels": a.labels, "predicted": a.predicted, "emotions": a.emotions}
    if a.attributions is not None:
        out["explanation"] = {"label": a.explained_label, "tokens": a.attributions}
    return out


def run_text(files: Sequence[Path], output: Path | None, model_dir: Path | None, explain: bool, threads: int) -> int:
    try:
        batches = [read_messages(f) for f in files]
    except InputFileError as exc:
        print(f"persona-agent analyze text: {exc}", file=sys.stderr)
        return 2
    model = load_text_model(model_dir, threads=threads)
    out: TextIO = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for messages in batches:
            for s in range(0, len(messages), 256):
                for a in analyze_texts(model, messages[s:s + 256], explain=explain):
                    out.write(json.dumps(text_result(a), ensure_ascii=False) + "\n")
    finally:
        if output:
            out.close()
    return 0
