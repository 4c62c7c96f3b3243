"""What the gated fusion network sees of each modality: a small "head" vector (log-distribution, confidence,
entropy, input quality) and, for text and face, the perceiver's embedding. Used live and in training alike."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from perception import LABELS, MODALITIES, Modality, ModalitySignal

# quality measures each perceiver puts in evidence["quality"], with how they are scaled to about [0, 1]
QUALITY: Mapping[Modality, tuple[tuple[str, float, float], ...]] = {  # (key, offset, scale): (x + offset) / scale
    "text": (("words", 0.0, 0.0), ("letters", 0.0, 1.0)),  # words: log1p(x) / 4, see _scale
    "face": (("sharpness", 0.0, 8.0), ("contrast", 0.0, 0.25), ("brightness", 0.0, 1.0)),
    "voice": (("level_dbfs", 40.0, 20.0), ("dynamic_range_db", 0.0, 30.0), ("duration_s", 0.0, 0.0)),
}
EMBEDDING_DIMS: Mapping[Modality, int] = {"text": 384, "face": 256, "voice": 0}  # voice: too few clips to learn from
HEAD_DIMS: Mapping[Modality, int] = {m: len(LABELS) + 2 + len(QUALITY[m]) for m in MODALITIES}


def _scale(key: str, x: float, offset: float, scale: float) -> float:
    if scale == 0.0:  # counts and durations: log scale
        return float(np.log1p(max(x, 0.0)) / 4.0)
    return float(np.clip((x + offset) / scale, -2.0, 2.0))


def head_vector(signal: ModalitySignal) -> np.ndarray:
    """[HEAD_DIMS[m]]: log-probabilities, confidence, normalised entropy, scaled quality measures (0 if missing)."""
    p = np.clip(signal.distribution.astype(np.float64), 1e-4, 1.0)
    p = p / p.sum()
    entropy = float(-(p * np.log(p)).sum() / np.log(len(LABELS)))
    quality = signal.evidence.get("quality", {})
    assert isinstance(quality, Mapping)
    q = [_scale(k, float(quality.get(k, 0.0)), off, sc) for k, off, sc in QUALITY[signal.modality]]
    return np.concatenate([np.log(p), [signal.confidence, entropy], q]).astype(np.float32)


def embedding_vector(signal: ModalitySignal) -> np.ndarray:
    d = EMBEDDING_DIMS[signal.modality]
    if d == 0:
        return np.zeros(0, np.float32)
    assert signal.embedding.shape == (d,), (
        f"{signal.modality} embedding {signal.embedding.shape}, fusion expects ({d},)"
    )
    return signal.embedding.astype(np.float32)
