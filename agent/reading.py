"""Reading a user's message: its text emotion and its crisis screening, from one text-model pass per batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from perception import ModalitySignal
from perception.language import LanguageGuess, LanguageId
from perception.safety import RiskAssessment, RiskClassifier, RiskFeatures, rules_only
from perception.sentence_encoder import SentenceEncoder
from perception.text_model import TextEmotionModel
from perception.warning_signs import WarningSignModel, read_messages

log = logging.getLogger(__name__)


class TextPerceiver(Protocol):
    @property
    def name(self) -> str: ...

    def perceive_batch(self, texts: Sequence[str]) -> list[ModalitySignal]: ...


@dataclass(frozen=True, slots=True)
class TextReading:
    """One message, read: its emotion signal (None when the text model failed on it) and its risk."""

    signal: ModalitySignal | None
    risk: RiskAssessment
    language: LanguageGuess | None = None  # None: no identifier configured
    features: np.ndarray | None = None  # how the models read it (risk_features): the strategy chooser reads it too


class TextReader:
    """Many sessions' messages at once (the micro-batcher's batch): one forward pass of the trained text model gives
    each message's emotion signal and the features the crisis classifier and the warning-sign scorer read, as one
    matrix (the sentences of multi-sentence messages take one more batched pass). The explicit-phrase rules need no
    model: if the model fails, every message of the batch is still screened by them.

    `model` is the trained text model when it is the perceiver (None with the lexicon perceiver: then the risk is the
    rules alone, and there are no attributions). `encoder` is the safety encoder the classifiers were trained with
    (perception/sentence_encoder.py): one more batched pass, for the safety features only."""

    def __init__(
        self,
        perceiver: TextPerceiver,
        model: TextEmotionModel | None,
        risk: RiskClassifier | None,
        language: LanguageId | None = None,
        signs: WarningSignModel | None = None,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        self.perceiver, self.model, self.language = perceiver, model, language
        self.risk = risk if model is not None else None
        self.signs = signs if self.risk is not None else None
        self.features = RiskFeatures(model, encoder) if model is not None else None
        self.risk_name = "+".join(["rules"] + [m.name for m in (self.risk, self.signs) if m is not None])
        self._check_features()

    def _check_features(self) -> None:
        """At start-up, not on a user's message: classifiers trained on other features than these would fail every
        batch, and screening would fall back to the phrase rules alone, silently."""
        if self.features is None or self.risk is None:
            return
        n = self.features(["warm-up"]).shape[1]
        for name, want in (
            ("crisis classifier", len(self.risk.mean)),
            ("warning-sign scorer", len(self.signs.mean) if self.signs is not None else n),
        ):
            if want != n:
                raise RuntimeError(
                    f"the {name} was trained on {want} features and the safety layer makes {n}: "
                    "retrain it with the models loaded (persona-agent train warning-signs, then "
                    "train safety)"
                )

    @property
    def name(self) -> str:
        return self.perceiver.name

    def read_batch(self, texts: Sequence[str]) -> list[TextReading]:
        langs = [self.language.identify(t) if self.language is not None else None for t in texts]
        try:
            if self.model is None or self.risk is None:
                signals = self.perceiver.perceive_batch(texts)
                return [TextReading(s, rules_only(t), g) for s, t, g in zip(signals, texts, langs)]
            t0 = time.perf_counter()
            probs, pooled = self.model.forward(texts)
            signals = self.model.signals(texts, probs, pooled, (time.perf_counter() - t0) * 1000)
            assert self.features is not None
            features = self.features(texts, probs, pooled)
            signs = read_messages(self.signs, self.features, texts, features) if self.signs is not None else None
            risks = self.risk.assess_batch(texts, features, signs)
            return [TextReading(s, r, g, f) for s, r, g, f in zip(signals, risks, langs, features)]
        except Exception:  # the model failed: the rules still screen every message, the reply goes on without emotion
            log.exception("text perception failed on a batch of %d", len(texts))
            return [TextReading(None, rules_only(t), g) for t, g in zip(texts, langs)]

    def explain(self, text: str) -> dict[str, object] | None:
        """Per-word attributions for the top predicted emotion (blocking); None without the trained model."""
        if self.model is None:
            return None
        label, attrs = self.model.explain(text)
        return {
            "label": label,
            "method": "occlusion",
            "tokens": [{"token": a.token, "weight": a.weight} for a in attrs],
        }
