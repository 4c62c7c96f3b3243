"""Values perception hands to fusion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from perception.labels import LABELS, to_mapping, valence_arousal

Modality = Literal["text", "voice", "face"]
MODALITIES: tuple[Modality, ...] = ("text", "voice", "face")


@dataclass(frozen=True, slots=True)
class ModalitySignal:
    """One modality's reading of one user turn.

    distribution: [7] probabilities over LABELS.
    embedding: [D] modality-specific feature vector (D fixed per perceiver).
    confidence: in [0, 1], the perceiver's own estimate of how much to trust this reading.
    evidence: richer, perceiver-specific detail (e.g. the 28 GoEmotions labels), JSON-serialisable.
    """

    modality: Modality
    distribution: np.ndarray
    embedding: np.ndarray
    confidence: float
    latency_ms: float
    model: str
    evidence: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.distribution.shape == (len(LABELS),), f"distribution shape {self.distribution.shape}"
        assert 0.0 <= self.confidence <= 1.0, f"confidence {self.confidence} outside [0, 1]"

    @property
    def emotions(self) -> dict[str, float]:
        return to_mapping(self.distribution)

    @property
    def top(self) -> str:
        return LABELS[int(np.argmax(self.distribution))]

    @property
    def valence_arousal(self) -> tuple[float, float]:
        return valence_arousal(self.distribution)
