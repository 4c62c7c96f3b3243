"""What the analysis routes and `persona-agent analyze` return for one input: the agent's analysis dataclasses
(agent/analysis.py, the routes' response models), as the same JSON on both."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from agent.analysis import FaceAnalysis, TextAnalysis, VoiceAnalysis

_ADAPTERS: dict[type, TypeAdapter[Any]] = {t: TypeAdapter(t) for t in (TextAnalysis, VoiceAnalysis, FaceAnalysis)}


def as_json(result: TextAnalysis | VoiceAnalysis | FaceAnalysis) -> dict[str, Any]:
    out: dict[str, Any] = _ADAPTERS[type(result)].dump_python(result, mode="json")
    return out
