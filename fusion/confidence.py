"""Confidence-gated fusion: the untrained reference the trained gated network is compared with.

Gate per present modality = softmax over logit(confidence); fused distribution = Σ gate · dist.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np

from fusion.types import FusedPercept, gated_confidence
from perception import LABELS, MODALITIES, Modality, ModalitySignal


class ConfidenceFusion:
    name = "confidence-gate"

    def fuse(self, signals: Mapping[Modality, ModalitySignal]) -> FusedPercept:
        t0 = time.perf_counter()
        present = tuple(m for m in MODALITIES if m in signals)
        gates: dict[Modality, float] = dict.fromkeys(MODALITIES, 0.0)
        if not present:
            dist = np.zeros(len(LABELS), dtype=np.float32)
            dist[LABELS.index("neutral")] = 1.0
        else:
            logits = np.array([_logit(signals[m].confidence) for m in present], dtype=np.float64)
            w = np.exp(logits - logits.max())
            w /= w.sum()
            for m, g in zip(present, w):
                gates[m] = float(g)
            dist = np.sum([gates[m] * signals[m].distribution for m in present], axis=0).astype(np.float32)  # [7]
        return FusedPercept(
            distribution=dist,
            gates=gates,
            present=present,
            model=self.name,
            latency_ms=(time.perf_counter() - t0) * 1000,
            confidence=gated_confidence(gates, signals),
        )


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))
