"""What the analysis routes and `persona-agent analyze` return for one input: the same JSON shape on both."""

from __future__ import annotations

from agent.analysis import FaceAnalysis, TextAnalysis, VoiceAnalysis


def text_result(a: TextAnalysis) -> dict[str, object]:
    out: dict[str, object] = {"text": a.text, "labels": a.labels, "predicted": a.predicted, "emotions": a.emotions}
    if a.attributions is not None:
        out["explanation"] = {"label": a.explained_label, "tokens": a.attributions}
    return out


def voice_result(path: str, a: VoiceAnalysis) -> dict[str, object]:
    return {
        "path": path,
        "transcript": a.transcript,
        "emotions": a.emotions,
        "arousal": a.arousal,
        "valence": a.valence,
        "prosody": a.prosody,
        "text_emotions": a.text_emotions,
        "duration_s": a.duration_s,
    }


def face_result(a: FaceAnalysis) -> dict[str, object]:
    return {"faces": a.faces, "width": a.width, "height": a.height, "latency_ms": a.latency_ms, "model": a.model}
