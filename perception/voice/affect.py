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
            evidence={"prosody": feats.prosody.as_dict()},
        )


def load_voice_affect(path: str | Path) -> VoiceAffectModel:
    with np.load(path, allow_pickle=False) as z:
        assert tuple(str(x) for x in z["labels"]) == LABELS, "voice head labels differ from the shared label space"
        assert z["mean"].shape == (FULL_DIM,), f"voice head expects {z['mean'].shape} features, extractor gives {FULL_DIM}"
        meta = json.loads(str(z["meta"]))
        return VoiceAffectModel(mean=z["mean"], scale=z["scale"], coef=z["coef"], bias=z["bias"],
                                name=f"prosody-logreg-ravdess (loao acc {meta['loao_acc']})")


def default_voice_affect_path() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "voice_affect.npz"
