"""Where the prompt puts the controls' guidance: `auto` follows what the embedded engine's adapter was trained with
(its training.json), an external LLM gets the top system message, and an explicit setting wins."""

from __future__ import annotations

import json
from pathlib import Path

from agent.llm.engine import EmbeddedEngine, EmbeddedEngineConfig, adapter_controls_at
from agent.runtime import resolve_controls_at


def _adapter(path: Path, record: dict | None) -> Path:
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": 16}))
    if record is not None:
        (path / "training.json").write_text(json.dumps(record))
    return path


def test_the_layout_follows_the_adapter_unless_set(tmp_path: Path):
    end = _adapter(tmp_path / "end", {"controls_at": "end"})
    old = _adapter(tmp_path / "old", {"lr": 3e-4})  # trained before the field existed: the top layout
    assert adapter_controls_at(end) == "end" and adapter_controls_at(old) == "system"
    assert adapter_controls_at(_adapter(tmp_path / "bare", None)) == "system"

    def engine(adapter: Path | None) -> EmbeddedEngine:
        return EmbeddedEngine(EmbeddedEngineConfig(python=tmp_path / "python", model_dir=tmp_path, adapter_dir=adapter))

    assert resolve_controls_at("auto", engine(end)) == "end"
    assert resolve_controls_at("auto", engine(old)) == "system"
    assert resolve_controls_at("auto", engine(None)) == "system"  # the plain base model
    assert resolve_controls_at("auto", None) == "system"  # an external LLM (LLM_BASE_URL)
    assert resolve_controls_at("system", engine(end)) == "system"
    assert resolve_controls_at("end", None) == "end"
