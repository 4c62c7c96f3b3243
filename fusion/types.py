"""Values fusion hands to persona."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from perception import LABELS, Modality, ModalitySignal
from perception.labels import to_mapping, valence_arousal


@dataclass(frozen=True, slots=True)
class FusedPercept:
    """The fused reading of one turn.

    distribution: [7] over LABELS. (The network's hidden Σ g_m h_m stays inside fusion: nothing downstream read it.)
    gates: weight per modality, summing to one over `present` (absent modalities weigh 0).
    confidence: how much to trust this reading, in [0, 1]: the gate-weighted confidence of the present signals.
    """

    distribution: np.ndarray
    gates: Mapping[Modality, float]
    present: tuple[Modality, ...]
    model: str
    latency_ms: float
    confidence: float = 1.0

    def __post_init__(self) -> None:
        assert self.distribution.shape == (len(LABELS),), f"distribution shape {self.distribution.shape}"
        if self.present:
            total = sum(self.gates[m] for m in self.present)
            assert abs(total - 1.0) < 1e-4, f"gates over present modalities sum to {total}, not 1"

    @property
    def emotions(self) -> dict[str, float]:
        return to_mapping(self.distribution)

    @property
    def valence_arousal(self) -> tuple[float, float]:
        return valence_arousal(self.distribution)


def gated_confidence(gates: Mapping[Modality, float], signals: Mapping[Modality, ModalitySignal]) -> float:
    """The fused reading's confidence: each present signal's own confidence, weighed by its gate."""
    return float(sum(gates[m] * s.confidence for m, s in signals.items()))
