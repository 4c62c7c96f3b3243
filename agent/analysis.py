"""Batch analysis (CLI and REST): the perception models applied to many inputs, without a conversation."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from agent.voice import VoiceModels
from perception.face.image import MAX_IMAGE_BYTES, decode_image
from perception.face.perceiver import FacePerceiver
from perception.safety import (
    RiskAssessment,
    RiskClassifier,
    RiskFeatures,
    default_risk_classifier_path,
    load_risk_classifier,
)
from perception.text_model import TextEmotionModel
from perception.voice.audio import SAMPLE_RATE, decode_file
from perception.warning_signs import (
    WarningSignModel,
    default_warning_sign_model_path,
    load_warning_sign_model,
    read_messages,
)


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    text: str
    labels: dict[str, float]  # 28 GoEmotions labels -> probability
    predicted: list[str]  # labels over their tuned thresholds
    emotions: dict[str, float]  # 7 shared labels -> probability
    explained_label: str | None = None
    attributions: list[dict[str, object]] | None = None


def analyze_texts(model: TextEmotionModel, texts: Sequence[str], explain: bool = False) -> list[TextAnalysis]:
    """Empty lines are analysed too (they come out neutral), so output lines match input lines one to one."""
    signals = model.perceive_batch(list(texts)) if texts else []
    out = []
    for text, s in zip(texts, signals):
        label, attributions = (None, None)
        if explain and text.strip():
            label, attrs = model.explain(text)
            attributions = [{"token": a.token, "weight": a.weight} for a in attrs]
        ev: Any = s.evidence  # the text model's evidence: labels, predicted, quality
        out.append(
            TextAnalysis(
                text=text,
                labels=dict(ev["labels"]),
                predicted=list(ev["predicted"]),
                emotions=s.emotions,
                explained_label=label,
                attributions=attributions,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class VoiceAnalysis:
    transcript: str
    emotions: dict[str, float]  # from prosody, 7 shared labels
    valence: float
    arousal: float
    prosody: dict[str, float]
    text_emotions: dict[str, float] | None  # the transcript's text emotion, a separate signal
    duration_s: float


VOICE_WINDOW_S = 30.0  # the voice-emotion head reads Whisper's encoder, whose window is 30 s


def analyze_voice(
    models: VoiceModels, text_model: TextEmotionModel | None, data: bytes, max_seconds: float = 600.0
) -> VoiceAnalysis:
    """One audio file (any container FFmpeg reads), decoded in memory. Raises AudioError. A recording longer than the
    voice head's window is read window by window, and its emotions, valence, arousal and prosody are the windows'
    averages weighted by their length."""
    return analyze_audio(models, text_model, decode_file(data, max_seconds=max_seconds))


def analyze_audio(models: VoiceModels, text_model: TextEmotionModel | None, audio: np.ndarray) -> VoiceAnalysis:
    """analyze_voice on decoded audio (float32 mono 16 kHz)."""
    transcript = models.stt.transcribe(audio)
    step = int(VOICE_WINDOW_S * SAMPLE_RATE)
    windows = [audio[i : i + step] for i in range(0, len(audio), step)]
    if len(windows) > 1 and len(windows[-1]) < step // 10:  # a last sliver joins the window before it
        windows[-2:] = [np.concatenate(windows[-2:])[-step:]]
    signals = [models.affect.perceive(w) for w in windows]
    weights = np.array([len(w) for w in windows], dtype=np.float64) / sum(len(w) for w in windows)
    emotions = {
        k: round(float(sum(wt * s.emotions[k] for wt, s in zip(weights, signals))), 4) for k in signals[0].emotions
    }
    v, a = (float(sum(wt * s.valence_arousal[i] for wt, s in zip(weights, signals))) for i in (0, 1))
    prosodies = [cast(Mapping[str, float], s.evidence["prosody"]) for s in signals]
    prosody = {k: round(float(sum(wt * p[k] for wt, p in zip(weights, prosodies))), 4) for k in prosodies[0]}
    if "duration_s" in prosody:
        prosody["duration_s"] = round(sum(float(p["duration_s"]) for p in prosodies), 3)
    text_emotions = text_model.perceive(transcript.text).emotions if (text_model and transcript.text) else None
    return VoiceAnalysis(
        transcript=transcript.text,
        emotions=emotions,
        valence=round(v, 4),
        arousal=round(a, 4),
        prosody=prosody,
        text_emotions=text_emotions,
        duration_s=round(transcript.duration_s, 3),
    )


def load_risk_model() -> RiskClassifier:
    return load_risk_classifier(default_risk_classifier_path())


def load_warning_signs() -> WarningSignModel:
    return load_warning_sign_model(default_warning_sign_model_path())


def assess_texts(
    features_of: RiskFeatures, risk: RiskClassifier, texts: Sequence[str], signs: WarningSignModel | None = None
) -> list[RiskAssessment]:
    """The same decision the live safety layer makes, for many messages (one pass of the text model and of the
    safety encoder per batch, and one for the sentences of long messages when `signs` reads them)."""
    if not texts:
        return []
    features = features_of(texts)
    return risk.assess_batch(texts, features, read_messages(signs, features_of, texts, features) if signs else None)


@dataclass(frozen=True, slots=True)
class FaceAnalysis:
    faces: list[dict[str, object]]  # {"box": [x, y, w, h], "score": float | None, "emotions": {7 labels}, "saliency"?}
    width: int
    height: int
    latency_ms: float
    model: str


def analyze_face(
    perceiver: FacePerceiver, data: bytes, crop: bool = False, explain: bool = False, max_bytes: int = MAX_IMAGE_BYTES
) -> FaceAnalysis:
    """One JPEG/PNG, decoded in memory and never stored. Raises ImageError."""
    t0 = time.perf_counter()
    image = decode_image(data, max_bytes=max_bytes)
    readings = perceiver.read(image, crop=crop, explain=explain)
    faces = []
    for r in readings:
        emotions = r.emotions()
        face: dict[str, object] = {
            "box": list(r.box),
            "score": None if r.score is None else round(r.score, 3),
            "emotions": emotions,
        }
        if r.saliency is not None:
            face["saliency"] = {
                "grid": np.round(r.saliency, 3).tolist(),
                "method": "occlusion",
                "label": max(emotions, key=emotions.__getitem__),
            }
        faces.append(face)
    return FaceAnalysis(
        faces=faces,
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        latency_ms=round((time.perf_counter() - t0) * 1000, 3),
        model=perceiver.name,
    )
