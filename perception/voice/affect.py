"""Voice affect: a linear head over what the Whisper encoder hears in the utterance (the speech-to-text model's own
encoder, mean-pooled) and prosody/spectral features → distribution over the 7 shared labels."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.labels import LABELS
from perception.types import ModalitySignal
from perception.voice.prosody import FULL_DIM, extract


@dataclass(frozen=True)
class WhisperEncoderFeatures:
    """The Whisper encoder's output over an utterance, mean-pooled over time: [dim]. The encoder runs on the
    utterance's own frames rather than Whisper's 30 s window (CTranslate2 takes any even frame count): ~24 ms for a
    3 s clip on 2 threads instead of ~330 ms. (Decoding text from such a short window repeats itself; for features it
    is what the head was trained on.)"""

    model: Any  # faster_whisper.WhisperModel — the speech-to-text model, shared
    name: str

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        mel = self.model.feature_extractor(audio)  # [80, frames], 10 ms each
        n = max(2, mel.shape[1] // 2 * 2)
        if mel.shape[1] < n:
            mel = np.pad(mel, ((0, 0), (0, n - mel.shape[1])))
        out = np.asarray(self.model.encode(np.ascontiguousarray(mel[:, :n])))[0]  # [n / 2, dim]
        return out.mean(axis=0).astype(np.float32)


def head_features(encoder: WhisperEncoderFeatures | None, audio: np.ndarray, full: np.ndarray) -> np.ndarray:
    """What a voice head reads: the encoder's features (if it has one) then the prosody features `full`."""
    return full if encoder is None else np.concatenate([encoder(audio), full])


@dataclass(frozen=True)
class VoiceAffectModel:
    mean: np.ndarray  # [F]: the encoder's features (if any) then the prosody features
    scale: np.ndarray  # [F]
    coef: np.ndarray  # [7, F]
    bias: np.ndarray  # [7]
    name: str = "prosody-logreg-ravdess"
    encoder: WhisperEncoderFeatures | None = None  # None: a prosody-only head

    def probs(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale  # [F]
        logits = self.coef @ z + self.bias  # [7]
        e = np.exp(logits - logits.max())
        return (e / e.sum()).astype(np.float32)

    def perceive(self, audio: np.ndarray) -> ModalitySignal:
        t0 = time.perf_counter()
        feats = extract(audio)
        dist = self.probs(head_features(self.encoder, audio, feats.full))
        duration = feats.prosody.duration_s
        # Short clips and flat distributions are less trustworthy.
        h = -float((dist * np.log(np.clip(dist, 1e-9, 1))).sum()) / np.log(len(LABELS))
        confidence = float(np.clip((1.0 - h) * min(1.0, duration / 1.5), 0.0, 1.0))
        z = ((feats.full - self.mean[-FULL_DIM:]) / self.scale[-FULL_DIM:]).astype(np.float32)  # [FULL_DIM] prosody
        return ModalitySignal(
            modality="voice",
            distribution=dist,
            embedding=z,
            confidence=confidence,
            latency_ms=(time.perf_counter() - t0) * 1000,
            model=self.name,
            evidence={"prosody": feats.prosody.as_dict(), "quality": audio_quality(audio)},
        )


def audio_quality(audio: np.ndarray) -> dict[str, float]:
    """How usable the recording is, before loudness normalisation: level (dBFS), the spread between loud and quiet
    20 ms frames (a signal-to-noise proxy: noise fills the pauses), and duration."""
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 320) if len(audio) >= 320 else audio.reshape(1, -1)
    db = 20 * np.log10(np.maximum(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)), 1e-6))
    return {
        "level_dbfs": round(float(20 * np.log10(max(float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))), 1e-6))), 2),
        "dynamic_range_db": round(float(np.percentile(db, 95) - np.percentile(db, 10)), 2),
        "duration_s": round(len(audio) / 16000, 3),
    }


def voice_affect_encoder(path: str | Path) -> str | None:
    """The speech-to-text model whose encoder the head reads (e.g. "tiny.en"), or None for a prosody-only head."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"])).get("encoder")


def load_voice_affect(path: str | Path, whisper: Any = None) -> VoiceAffectModel:
    """The head at `path`; `whisper` is the faster-whisper model of the head's encoder (voice_affect_encoder(path))
    when it reads one."""
    with np.load(path, allow_pickle=False) as z:
        assert tuple(str(x) for x in z["labels"]) == LABELS, "voice head labels differ from the shared label space"
        meta = json.loads(str(z["meta"]))
        encoder = None
        if meta.get("encoder"):
            assert whisper is not None, f"this voice head reads the Whisper {meta['encoder']} encoder: pass its model"
            encoder = WhisperEncoderFeatures(whisper, f"whisper-{meta['encoder']}-encoder")
        dim = int(meta.get("encoder_dim", 0)) + FULL_DIM
        assert z["mean"].shape == (dim,), f"voice head expects {z['mean'].shape} features, extractors give {dim}"
        what = f"whisper-{meta['encoder']}+prosody" if encoder else "prosody"
        return VoiceAffectModel(
            mean=z["mean"],
            scale=z["scale"],
            coef=z["coef"],
            bias=z["bias"],
            encoder=encoder,
            name=f"{what}-logreg-ravdess (loao acc {meta['loao_acc']})",
        )


def default_voice_affect_path() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "voice_affect.npz"
