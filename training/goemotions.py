"""GoEmotions reading and the 28 → 7 mapping (DESIGN.md §2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.labels import LABELS
from perception.text_model import EKMAN_MAPPING, GOEMOTIONS


@dataclass(frozen=True)
class Split:
    texts: list[str]
    y: np.ndarray  # [N, 28] multi-hot


def read_tsv(path: Path) -> Split:
    texts, rows = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        texts.append(parts[0])
        y = np.zeros(len(GOEMOTIONS), dtype=np.float32)
        for i in parts[1].split(","):
            y[int(i)] = 1.0
        rows.append(y)
    return Split(texts, np.stack(rows))


def ekman_matrix(mapping_file: Path | None = None) -> np.ndarray:
    """[28, 7] 0/1 matrix: which shared label each GoEmotions label belongs to (neutral → neutral)."""
    mapping = EKMAN_MAPPING if mapping_file is None else json.loads(mapping_file.read_text())
    m = np.zeros((len(GOEMOTIONS), len(LABELS)), dtype=np.float32)
    for ekman, members in mapping.items():
        for g in members:
            m[GOEMOTIONS.index(g), LABELS.index(ekman)] = 1.0
    m[GOEMOTIONS.index("neutral"), LABELS.index("neutral")] = 1.0
    assert (m.sum(1) == 1).all(), "every GoEmotions label maps to exactly one shared label"
    return m
