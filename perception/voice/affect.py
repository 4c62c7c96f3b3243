"""Voice affect: a linear head over prosody/spectral features → distribution over the 7 shared labels."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.labels import LABELS
from perception.types import ModalitySignal
from perception.voice.prosody import FULL_DIM, extract


@dataclass(frozen=True)
class VoiceAffectModel:
    mean: np.ndarray  # [F]
    scale: np.ndarray  # [F]
    coef: np.ndarray  # [7, F]
    bias: np.ndarray  # [7]
    name: str = "prosody-logreg-ravdess"

    def probs(self, full: np.ndarray) -> np.ndarray:
        z = (full - self.mean) / self.scale  # [F]
        logits = self.coef @ z + self.bias  # [7]
        e = np.exp(logits - logits.max())
        return (e / e.sum()).astype(np.float32)

    def perceive(self, audio: np.ndarray) -> ModalitySignal:
        t0 = time.perf_counter()
        feats = extract(audio)
        dist = self.probs(feats.full)
        duration = feats.prosody.duration_s
        # Short clips and flat distributions are less trustworthy.
        h = -float((dist * np.log(np.clip(dist, 1e-9, 1))).sum()) / np.log(len(LABELS))
        confidence = float(np.clip((1.0 - h) * min(1.0, duration / 1.5), 0.0, 1.0))
        z = ((feats.full - self.mean) / self.scale).astype(np.float32)  # [F]
        return ModalitySignal(
            modality="voice", distribution=dist, embedding=z, confidence=confidence,
            latency_ms=(time.perf_counter() - t0) * 1000, model=self.name,
            evidence={"prosody": feats.prosody.as_dict(), "quality": audio_quality(audio)},
        )


def audio_quality(audio: np.ndarray) -> dict[str, float]:
    """How usable the recording is, before loudness normalisation: level (dBFS), the spread between loud and quiet
    20 ms frames (a signal-to-noise proxy: noise fills the pauses), and duration."""
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 320) if len(audio) >= 320 else audio.reshape(1, -1)
    db = 20 * np.log10(np.maximum(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)), 1e-6))
    return {"level_dbfs": round(float(20 * np.log10(max(float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))), 1e-6))), 2),
            "dynamic_range_db": round(float(np.percentile(db, 95) - np.percentile(db, 10)), 2),
            "duration_s": round(len(audio) / 16000, 3)}


def load_voice_affect(path: str | Path) -> VoiceAffectModel:
    with np.load(path, allow_pickle=False) as z:
        assert tuple(str(x) for x in z["labels"]) == LABELS, "voice head labels differ from the shared label space"
        assert z["mean"].shape == (FULL_DIM,), f"voice head expects {z['mean'].shape} features, extractor gives {FULL_DIM}"
        meta = json.loads(str(z["meta"]))
        return VoiceAffectModel(mean=z["mean"], scale=z["scale"], coef=z["coef"], bias=z["bias"],
                                name=f"prosody-logreg-ravdess (loao acc {meta['loao_acc']})")


def default_voice_affect_path() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "voice_affect.npz"
