"""Per-modality perception: text, voice, face → ModalitySignal over the shared label space."""

from perception.labels import LABELS, VALENCE_AROUSAL, as_distribution, valence_arousal
from perception.types import MODALITIES, Modality, ModalitySignal

__all__ = [
    "LABELS",
    "MODALITIES",
    "VALENCE_AROUSAL",
    "Modality",
    "ModalitySignal",
    "as_distribution",
    "valence_arousal",
]
