"""Fuse per-modality signals into one percept with interpretable gate weights."""

from fusion.confidence import ConfidenceFusion
from fusion.types import FusedPercept

__all__ = ["ConfidenceFusion", "FusedPercept"]
