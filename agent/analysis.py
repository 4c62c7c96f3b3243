"""Batch analysis (CLI and REST): the perception models applied to many inputs, without a conversation."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast

import numpy as np
from pydantic import Field

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

# What analysis returns, declared once: the REST routes' response models and the lines `persona-agent analyze` writes.


@dataclass(frozen=True, slots=True)
class TokenWeight:
    token: str
    weight: float


@dataclass(frozen=True, slots=True)
class TextExplanation:
    """Per-token attributions for one label (explain=true)."""

    label: Annotated[str, Field(description="the label explained: the message's top one")]
    tokens: tuple[TokenWeight, ...]


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    """One message's emotions."""

    text: str
    labels: Annotated[dict[str, float], Field(description="28 GoEmotions labels -> probability")]
    predicted: Annotated[list[str], Field(description="labels over their tuned thresholds")]
    emotions: Annotated[dict[str, float], Field(description="7 shared labels -> probability")]
    explanation: TextExplanation | None = None


@dataclass(frozen=True, slots=True)
class TextAnalyses:
    results: list[TextAnalysis]


def analyze_texts(model: TextEmotionModel, texts: Sequence[str], explain: bool = False) -> list[TextAnalysis]:
    """Empty lines are analysed too (they come out neutral), so output lines match input lines one to one."""
    signals = model.perceive_batch(list(texts)) if texts else []
    out = []
    for text, s in zip(texts, signals):
        explanation = None
        if explain and text.strip():
            label, attrs = model.explain(text)
            explanation = TextExplanation(label, tuple(TokenWeight(a.token, a.weight) for a in attrs))
        ev: Any = s.evidence  # the text model's evidence: labels, predicted, quality
        out.append(
            TextAnalysis(
                text=text,
                labels=dict(ev["labels"]),
                predicted=list(ev["predicted"]),
                emotions=s.emotions,
                explanation=explanation,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class VoiceAnalysis:
    """One recording's transcript and voice emotions."""

    path: Annotated[str, Field(description="the file read (`upload` for a request body)")]
    transcript: str
    emotions: Annotated[dict[str, float], Field(description="voice (prosody) emotion over the 7 shared labels")]
    arousal: float
    valence: float
    prosody: dict[str, float]
    text_emotions: Annotated[
        dict[str, float] | None, Field(description="the transcript's text emotion, a separate signal")
    ]
    duration_s: float


VOICE_WINDOW_S = 30.0  # the voice-emotion head reads Whisper's encoder, whose window is 30 s


def analyze_voice(
    models: VoiceModels,
    text_model: TextEmotionModel | None,
    data: bytes,
    max_seconds: float = 600.0,
    path: str = "upload",
) -> VoiceAnalysis:
    """One audio file (any container FFmpeg reads), decoded in memory. Raises AudioError. A recording longer than the
    voice head's window is read window by window, and its emotions, valence, arousal and prosody are the windows'
    averages weighted by their length."""
    return analyze_audio(models, text_model, decode_file(data, max_seconds=max_seconds), path)


def analyze_audio(
    models: VoiceModels, text_model: TextEmotionModel | None, audio: np.ndarray, path: str = "upload"
) -> VoiceAnalysis:
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
        path=path,
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
class Saliency:
    grid: list[list[float]]  # 6 x 6
    label: str  # the emotion whose drop the grid measures: the face's top one
    method: str = "occlusion"


@dataclass(frozen=True, slots=True)
class FaceReading:
    box: Annotated[tuple[int, int, int, int], Field(description="x, y, w, h in pixels")]
    score: Annotated[float | None, Field(description="detector score (null when the image was given as a face crop)")]
    emotions: Annotated[dict[str, float], Field(description="7 shared labels -> probability")]
    saliency: Annotated[Saliency | None, Field(description="6x6 occlusion grid over the face, when explain=true")] = (
        None
    )


@dataclass(frozen=True, slots=True)
class FaceAnalysis:
    """The faces in one image."""

    faces: Annotated[list[FaceReading], Field(description="largest first; empty when no face was found")]
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
        saliency = None
        if r.saliency is not None:
            saliency = Saliency(np.round(r.saliency, 3).tolist(), label=max(emotions, key=emotions.__getitem__))
        x, y, w, h = (int(v) for v in r.box)
        score = None if r.score is None else round(r.score, 3)
        faces.append(FaceReading((x, y, w, h), score, emotions, saliency))
    return FaceAnalysis(
        faces=faces,
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        latency_ms=round((time.perf_counter() - t0) * 1000, 3),
        model=perceiver.name,
    )
