"""The shared label space (DESIGN.md §2) and its fixed valence/arousal mapping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
N_LABELS = len(LABELS)

# Per-class (valence, arousal) in [-1, 1], after Russell's circumplex as commonly placed for the
# six basic emotions (e.g. Russell 1980; Posner et al. 2005). Fixed and documented: the persona's
# valence/arousal are expectations of these under the fused distribution, never a separate guess.
VALENCE_AROUSAL: Mapping[str, tuple[float, float]] = {
    "anger": (-0.6, 0.8),
    "disgust": (-0.7, 0.3),
    "fear": (-0.7, 0.7),
    "joy": (0.8, 0.5),
    "sadness": (-0.7, -0.4),
    "surprise": (0.2, 0.8),
    "neutral": (0.0, 0.0),
}
VA_MATRIX = np.array([VALENCE_AROUSAL[k] for k in LABELS], dtype=np.float32)  # [7, 2]


def as_distribution(probs: Mapping[str, float] | Sequence[float]) -> np.ndarray:
    """A length-7 probability vector in LABELS order, renormalised; uniform if it is all zero."""
    if isinstance(probs, Mapping):
        unknown = set(probs) - set(LABELS)
        assert not unknown, f"labels outside the shared space: {sorted(unknown)}"
        vec = np.array([float(probs.get(k, 0.0)) for k in LABELS], dtype=np.float32)
    else:
        vec = np.asarray(probs, dtype=np.float32).reshape(-1)
        assert vec.shape == (N_LABELS,), f"expected {N_LABELS} probabilities, got {vec.shape}"
    vec = np.clip(vec, 0.0, None)
    total = float(vec.sum())
    if total <= 0.0:
        return np.full(N_LABELS, 1.0 / N_LABELS, dtype=np.float32)
    return vec / total


def valence_arousal(dist: np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) of a length-7 distribution."""
    va = dist.astype(np.float32) @ VA_MATRIX  # [7] @ [7, 2] -> [2]
    return float(va[0]), float(va[1])


def to_mapping(dist: np.ndarray) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in zip(LABELS, dist)}
