"""The learned strategy chooser: which support strategy fits this message, learned from how human supporters chose in
ESConv (training/strategy_chooser.py; persona/models/STRATEGY_CHOOSER.md says what data trained it and how well it
does). It proposes; the policy's rules dispose — a rule that sets a strategy (an operator's, or one where people
decided what must happen, like answering a request for advice with suggestions) overrides it, and the safety layer
outranks both (persona/policy.py). Pure numpy, about 0.1 ms.

What it reads is what the policy can see at that moment: how the message reads (the text model's and the sentence
encoder's embeddings and the 28 emotion probabilities, computed for screening anyway), its kind
(persona/message.py), the persona state, the strategy of the previous reply and the turn number. The features are
built here, once, for training and serving alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from persona.controls import STRATEGIES
from persona.message import MESSAGE_KINDS, Moment
from persona.state import PersonaState

MODEL_FILE = "strategy_chooser.npz"
PREVIOUS = ("none", *STRATEGIES)
# what the message reading says besides its kind (persona/message.py Moment)
FLAGS = ("good_news", "about_us", "help", "reassurance")
# the features after the reading: 6 persona scalars, its 7-label distribution, the message's valence, its kind and
# flags, the previous strategy and the turn
TAIL = 6 + 7 + 1 + len(MESSAGE_KINDS) + len(FLAGS) + len(PREVIOUS) + 1

# why a strategy fits, in the words of the explanation, by the message's kind when it says more than the strategy
_BECAUSE = {
    "advice_request": "you asked what to do",
    "question": "you asked a question",
    "request": "you asked for something concrete",
    "greeting": "you said hello",
}


def chooser_features(reading: np.ndarray, moment: Moment, state: PersonaState) -> np.ndarray:
    """One message's features: how the text model and the sentence encoder read it (the safety layer's features of
    the message: perception/safety.py risk_features), then the persona's scalars and distribution, the message's
    valence, kind and flags, the previous strategy (one-hot) and the turn (scaled, capped at 30)."""
    numeric = [state.valence, state.arousal, state.stress, state.confidence, state.formality, state.verbosity]
    kind = [1.0 if moment.kind == k else 0.0 for k in MESSAGE_KINDS]
    prev = [1.0 if (moment.previous_strategy or "none") == k else 0.0 for k in PREVIOUS]
    flags = [1.0 if getattr(moment, f) else 0.0 for f in FLAGS]
    tail = [*numeric, *state.distribution, moment.valence, *kind, *flags, *prev, min(moment.turn, 30) / 30]
    return np.concatenate([np.asarray(reading, np.float32).ravel(), np.asarray(tail, np.float32)])


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    strategy: str
    p: float  # the chooser's probability of it, among the strategies the profile allows
    probs: Mapping[str, float]

    def why(self, moment: Moment | None) -> str:
        because = _BECAUSE.get(moment.kind) if moment is not None else None
        return f"The learned chooser picked {self.strategy} ({self.p:.2f})" + (f": {because}." if because else ".")


@dataclass(frozen=True)
class StrategyChooser:
    """A standardiser and a softmax read-out (with one hidden ReLU layer when `w2` is given)."""

    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray | None = None
    b2: np.ndarray | None = None
    classes: tuple[str, ...] = STRATEGIES
    majority: str = "Question"  # the most frequent strategy of its training data (the plain peer it must beat)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float32) - self.mean) / self.scale
        h = x @ self.w1 + self.b1
        if self.w2 is not None and self.b2 is not None:
            h = np.maximum(h, 0.0) @ self.w2 + self.b2
        e = np.exp(h - h.max(axis=-1, keepdims=True))
        return np.asarray(e / e.sum(axis=-1, keepdims=True))

    def choose(self, features: np.ndarray, allowed: Sequence[str] | None = None) -> StrategyChoice:
        """The most probable strategy among `allowed` (all when None), its probability renormalised over them."""
        p = self.probabilities(features)
        keep = np.array([allowed is None or c in allowed for c in self.classes])
        q = np.where(keep, p, 0.0)
        q = q / q.sum() if q.sum() > 0 else keep / keep.sum()
        best = int(np.argmax(q))
        return StrategyChoice(
            strategy=self.classes[best],
            p=round(float(q[best]), 4),
            probs={c: round(float(v), 4) for c, v in zip(self.classes, q) if v > 0},
        )


def load_strategy_chooser(path: str | Path | None = None) -> StrategyChooser:
    """The one factory: the shipped weights (persona/models/strategy_chooser.npz) unless `path` names others."""
    source = Path(path) if path else Path(str(resources.files("persona").joinpath("models", MODEL_FILE)))
    with np.load(source, allow_pickle=False) as z:
        classes = tuple(str(c) for c in z["classes"])
        if set(classes) - set(STRATEGIES):
            raise ValueError(f"{source}: unknown strategies {sorted(set(classes) - set(STRATEGIES))}")
        return StrategyChooser(
            mean=z["mean"].astype(np.float32),
            scale=z["scale"].astype(np.float32),
            w1=z["w1"].astype(np.float32),
            b1=z["b1"].astype(np.float32),
            w2=z["w2"].astype(np.float32) if "w2" in z else None,
            b2=z["b2"].astype(np.float32) if "b2" in z else None,
            classes=classes,
            majority=str(z["majority"]) if "majority" in z else classes[0],
        )
