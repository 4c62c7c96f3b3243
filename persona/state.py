"""The user's persona over a conversation: a decayed running estimate built from fused percepts."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from fusion import FusedPercept
from perception import LABELS, Modality
from perception.labels import valence_arousal
from persona.style import Style

Trend = Literal["rising", "falling", "steady"]
_NEUTRAL = np.eye(len(LABELS), dtype=np.float32)[LABELS.index("neutral")]


@dataclass(frozen=True, slots=True)
class PersonaState:
    """valence, arousal in [-1, 1]; stress, confidence, formality, verbosity in [0, 1].

    distribution: 7 floats over LABELS (a tuple so the state is hashable and serialisable).
    trend: direction of valence over the last turns.
    """

    distribution: tuple[float, ...]
    valence: float
    arousal: float
    stress: float
    dominant_emotion: str
    confidence: float
    trend: Trend
    formality: float
    verbosity: float
    turns: int
    updated_at: float
    gates: tuple[tuple[Modality, float], ...] = ()
    present: tuple[Modality, ...] = ()
    strategy: str | None = None  # the support strategy of the last reply: the learned chooser reads it

    @staticmethod
    def initial(now: float) -> PersonaState:
        return PersonaState(
            distribution=tuple(float(x) for x in _NEUTRAL),
            valence=0.0,
            arousal=0.0,
            stress=0.0,
            dominant_emotion="neutral",
            confidence=0.0,
            trend="steady",
            formality=0.5,
            verbosity=0.3,
            turns=0,
            updated_at=now,
        )

    def view(self) -> PersonaView:
        """What clients are shown of the persona: rounded, the emotions by label."""
        return PersonaView(
            valence=round(self.valence, 4),
            arousal=round(self.arousal, 4),
            stress=round(self.stress, 4),
            dominant_emotion=self.dominant_emotion,
            confidence=round(self.confidence, 4),
            trend=self.trend,
            formality=round(self.formality, 4),
            verbosity=round(self.verbosity, 4),
            turns=self.turns,
            emotions={k: round(v, 4) for k, v in zip(LABELS, self.distribution)},
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self.view())


@dataclass(frozen=True, slots=True)
class PersonaView:
    """The persona as a client sees it (the `persona` event's state, session.started's persona)."""

    valence: float
    arousal: float
    stress: float
    dominant_emotion: str
    confidence: float
    trend: Trend
    formality: float
    verbosity: float
    turns: int
    emotions: Mapping[str, float]  # the 7 shared labels


def stress_of(valence: float, arousal: float, dist: np.ndarray) -> float:
    """Negative valence, amplified by arousal, plus direct fear/anger mass; clipped to [0, 1]."""
    neg = max(0.0, -valence) * (0.6 + 0.4 * max(0.0, arousal))
    direct = 0.5 * float(dist[LABELS.index("fear")]) + 0.3 * float(dist[LABELS.index("anger")])
    return float(min(1.0, max(0.0, 1.2 * neg + direct)))


@dataclass(frozen=True, slots=True)
class PersonaTracker:
    """Blend each turn into the state, weighted by the percept's confidence; decay toward neutral over time.

    half_life_s: idle seconds after which the old emotional state counts half.
    turn_weight: the most a single fully-confident turn can move the state.
    trend_eps: valence change per turn below which the trend is steady.
    """

    half_life_s: float = 900.0
    turn_weight: float = 0.6
    trend_eps: float = 0.05

    def decay(self, state: PersonaState, now: float) -> PersonaState:
        dt = max(0.0, now - state.updated_at)
        keep = 0.5 ** (dt / self.half_life_s)
        dist = keep * np.asarray(state.distribution, dtype=np.float32) + (1 - keep) * _NEUTRAL
        v, a = valence_arousal(dist)
        return replace(
            state,
            distribution=tuple(float(x) for x in dist),
            valence=v,
            arousal=a,
            stress=stress_of(v, a, dist),
            confidence=state.confidence * keep,
            updated_at=now,
        )

    def update(
        self,
        state: PersonaState,
        percept: FusedPercept,
        style: Style,
        confidence: float | None = None,
        now: float | None = None,
    ) -> PersonaState:
        """`confidence` defaults to the percept's own (fusion's); `now` to the wall clock."""
        confidence = percept.confidence if confidence is None else confidence
        now = time.time() if now is None else now
        prior = self.decay(state, now)
        # First turn: take the percept whole; later turns move the state by at most turn_weight.
        w = 1.0 if state.turns == 0 else self.turn_weight * max(0.2, confidence)
        old = np.asarray(prior.distribution, dtype=np.float32)
        dist = (1 - w) * old + w * percept.distribution  # [7]
        dist = dist / dist.sum()
        v, a = valence_arousal(dist)
        dv = v - prior.valence
        trend: Trend = "steady" if state.turns == 0 or abs(dv) < self.trend_eps else ("rising" if dv > 0 else "falling")
        sw = 1.0 if state.turns == 0 else 0.5 if style.words > 0 else 0.0
        return PersonaState(
            distribution=tuple(float(x) for x in dist),
            valence=v,
            arousal=a,
            stress=stress_of(v, a, dist),
            dominant_emotion=LABELS[int(np.argmax(dist))],
            confidence=float(min(1.0, (1 - w) * prior.confidence + w * confidence)),
            trend=trend,
            formality=(1 - sw) * prior.formality + sw * style.formality,
            verbosity=(1 - sw) * prior.verbosity + sw * style.verbosity,
            turns=state.turns + 1,
            updated_at=now,
            gates=tuple((m, round(float(g), 4)) for m, g in percept.gates.items()),
            present=percept.present,
            strategy=state.strategy,
        )
