"""Lexicon text perceiver: NRC emotion lexicon + VADER. The cheap baseline the trained model must beat."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from perception.labels import LABELS
from perception.types import ModalitySignal

_NRC_EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
_NRC_ALL = ("anger", "anticipation", "disgust", "fear", "joy", "negative", "positive", "sadness", "surprise", "trust")
_TOKEN = re.compile(r"[a-z']+")
LEXICON_EMBED_DIM = len(_NRC_ALL) + 4


@dataclass(frozen=True, slots=True)
class LexiconTextPerceiver:
    """Counts NRC emotion words, weighs them with VADER's polarity; neutral when nothing fires."""

    nrc: dict[str, tuple[str, ...]]
    vader: SentimentIntensityAnalyzer
    name: str = "lexicon-nrc-vader"

    def perceive(self, text: str) -> ModalitySignal:
        t0 = time.perf_counter()
        tokens = _TOKEN.findall(text.lower())
        counts = dict.fromkeys(_NRC_ALL, 0.0)
        for tok in tokens:
            for name in self.nrc.get(tok, ()):
                counts[name] += 1.0
        vs = self.vader.polarity_scores(text)
        emo = np.array([counts[e] for e in _NRC_EMOTIONS], dtype=np.float32)  # [6]
        # VADER sees negation and intensifiers the word counts miss: move mass along its polarity.
        if vs["compound"] >= 0.3:
            emo[_NRC_EMOTIONS.index("joy")] += 2.0 * vs["compound"]
        elif vs["compound"] <= -0.3 and emo.sum() == 0:
            emo[[0, 2, 4]] += -vs["compound"] / 3  # anger, fear, sadness: undecided negative
        hits = float(emo.sum())
        neutral = max(vs["neu"], 0.2) if hits > 0 else 1.0
        dist = np.zeros(len(LABELS), dtype=np.float32)
        if hits > 0:
            dist[:6] = (1.0 - neutral) * emo / hits
        dist[LABELS.index("neutral")] = neutral
        dist /= dist.sum()
        n = max(len(tokens), 1)
        embedding = np.array(
            [counts[e] / n for e in _NRC_ALL] + [vs["neg"], vs["neu"], vs["pos"], vs["compound"]], dtype=np.float32
        )  # [14]
        confidence = float(min(0.9, 0.3 + 0.15 * hits))
        return ModalitySignal(
            modality="text",
            distribution=dist,
            embedding=embedding,
            confidence=confidence,
            latency_ms=(time.perf_counter() - t0) * 1000,
            model=self.name,
            evidence={"vader_compound": round(vs["compound"], 4), "lexicon_hits": int(hits)},
        )

    def perceive_batch(self, texts: Sequence[str]) -> list[ModalitySignal]:
        return [self.perceive(t) for t in texts]


def load_lexicon_text_perceiver() -> LexiconTextPerceiver:
    """NRC word list from the `nrclex` package data (no TextBlob needed) and VADER's bundled lexicon."""
    raw = json.loads(resources.files("nrclex.data").joinpath("nrc_en.json").read_text(encoding="utf-8"))
    nrc = {word: tuple(e for e in emos if e in _NRC_ALL) for word, emos in raw.items()}
    return LexiconTextPerceiver(nrc=nrc, vader=SentimentIntensityAnalyzer())
