"""Warning signs of suicide risk by meaning (issue #41): which of the categories in `training/warning_signs/`
(C-SSRS ideation and behaviour items, IS PATH WARM, farewells, giving things away, burdensomeness, dose questions)
a message shows, scored sentence by sentence.

The scorer is a multinomial logistic regression (the categories and "none") over two views of each sentence: the
text model's own sentence embedding and 28 emotion probabilities (the features the crisis classifier reads, from the
emotion pass already made), and sublinear TF-IDF of its words, word pairs and character n-grams (`lexical_terms`, as
the crisis classifier counts them). A message is read as a whole and, when it has several, sentence by sentence too
(`sentence_units`): the sentence that reads most strongly decides. A crisis-tier
category past its threshold makes a crisis (a farewell or giving things away only after a message read at risk: alone,
a caution); any category past the caution threshold a caution. Trained and reported
by `persona-agent train warning-signs` (training/warning_signs.py); the model card is perception/models/SAFETY.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from perception.safety import RiskFeatures, tfidf_rows

Tier = Literal["crisis", "caution"]

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n+\s*")
MAX_SENTENCES = 24  # a longer message is read as a whole and by its first 24 sentences (the cost stays bounded)
WINDOW_WORDS = 40  # a message of up to 40 words fits the text model's 64-token window


def sentences(text: str) -> list[str]:
    """The sentences of `text` with at least two words, when there are two or more of them (else [])."""
    parts = [s.strip() for s in _SENTENCE_END.split(text) if len(s.split()) >= 2]
    return parts[:MAX_SENTENCES] if len(parts) > 1 else []


def sentence_units(texts: Sequence[str]) -> tuple[list[tuple[int, str]], list[bool]]:
    """The sentences to read besides the N messages, each with its message's index, and per sentence whether it
    needs a pass of the text model of its own: only those of a message longer than the model's window do. A
    sentence of a message within the window is read through its own words and its message's embedding (the window
    already holds all of it), so a chat message costs no second pass."""
    parts = [(i, s) for i, t in enumerate(texts) for s in sentences(t)]
    return parts, [len(texts[i].split()) > WINDOW_WORDS for i, _ in parts]


def unit_features(
    parts: Sequence[tuple[int, str]],
    own: Sequence[bool],
    features: np.ndarray,
    featurize: Callable[[list[str]], np.ndarray],
) -> np.ndarray:
    """[S, F] features of the sentence units of `sentence_units`: their message's row of `features`, or, for a long
    message's sentence (`own`), `featurize` of the sentence itself (one batched pass). Served and in training alike."""
    x = features[[i for i, _ in parts]] if parts else np.zeros((0, features.shape[1]), features.dtype)
    if any(own):
        idx = [k for k, o in enumerate(own) if o]
        x[idx] = featurize([parts[k][1] for k in idx])
    return x


def crisis_columns(tiers: Sequence[str]) -> np.ndarray:
    """The class columns (category k is column k + 1) of the crisis-tier categories."""
    return np.array([k + 1 for k, t in enumerate(tiers) if t == "crisis"])


@dataclass(frozen=True, slots=True)
class SignReading:
    """The strongest warning sign in one message: its category (None when no category passes a threshold), the tier
    it decides, and the scores that decided it (the largest over the message and its sentences)."""

    category: str | None
    tier: Tier | None
    crisis_score: float  # probability mass on crisis-tier categories
    any_score: float  # probability of any category (1 - P(none))


NO_SIGN = SignReading(category=None, tier=None, crisis_score=0.0, any_score=0.0)


@dataclass(frozen=True)
class WarningSignModel:
    categories: tuple[str, ...]  # class k + 1 is categories[k]; class 0 is "none"
    tiers: tuple[Tier, ...]  # per category
    alone: tuple[Tier, ...]  # per category, its tier when nothing earlier in the conversation was read at risk
    mean: np.ndarray  # [F] feature standardisation
    scale: np.ndarray  # [F]
    w_embedding: np.ndarray  # [K, F], K = 1 + len(categories)
    vocab: dict[str, int]
    idf: np.ndarray  # [V]
    w_lexical: np.ndarray  # [K, V]
    bias: np.ndarray  # [K]
    crisis_threshold: float
    caution_threshold: float
    name: str = "warning-signs-logreg-minilm+mpnet+tfidf"

    def probs(self, features: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """[N, F] features (`risk_features`) and the N texts → [N, K] class probabilities."""
        z = ((features - self.mean) / self.scale / np.sqrt(features.shape[1])) @ self.w_embedding.T + self.bias
        row, col, w = tfidf_rows(texts, self.vocab, self.idf)
        np.add.at(z, row, w[:, None] * self.w_lexical.T[col])
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return p

    def escalates(self, category: str | None) -> bool:
        """Whether `category` is a crisis after a message read at risk though only a caution alone (a farewell)."""
        if category not in self.categories:
            return False
        k = self.categories.index(category)
        return self.tiers[k] == "crisis" and self.alone[k] != "crisis"

    @property
    def crisis_columns(self) -> np.ndarray:
        return crisis_columns(self.tiers)

    def tier_scores(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[N, K] → ([N] crisis-tier mass, [N] any-category mass)."""
        return probs[:, self.crisis_columns].sum(axis=1), 1.0 - probs[:, 0]

    def read(
        self, probs: np.ndarray, owner: Sequence[int], n: int, caution_only: Sequence[bool] | None = None
    ) -> list[SignReading]:
        """[U, K] probabilities of U units (messages and their sentences), `owner[u]` the message unit u belongs to
        → the n messages' readings: per message, the unit with the largest crisis score decides a crisis, else the
        one with the largest any-category score decides a caution. A unit marked `caution_only` decides a caution at
        most (the sentences of a long message: see `read_messages`)."""
        crisis, anyrisk = self.tier_scores(probs)
        if caution_only is not None:
            crisis = np.where(np.asarray(caution_only, bool), 0.0, crisis)
        owner_a = np.asarray(owner)
        out = []
        for i in range(n):
            units = np.flatnonzero(owner_a == i)
            if not len(units):
                out.append(NO_SIGN)
                continue
            uc, ua = units[np.argmax(crisis[units])], units[np.argmax(anyrisk[units])]
            c, a = float(crisis[uc]), float(anyrisk[ua])
            if c >= self.crisis_threshold:
                k = int(self.crisis_columns[np.argmax(probs[uc, self.crisis_columns])]) - 1
                out.append(SignReading(self.categories[k], self.alone[k], c, a))
            elif a >= self.caution_threshold:
                out.append(SignReading(self.categories[int(np.argmax(probs[ua, 1:]))], "caution", c, a))
            else:
                out.append(SignReading(None, None, round(c, 4), round(a, 4)))
        return out


def read_messages(
    signs: WarningSignModel, features_of: RiskFeatures, texts: Sequence[str], features: np.ndarray
) -> list[SignReading]:
    """N messages and their [N, F] `risk_features` (from the emotion pass already made) → their N warning signs.
    The sentences of messages longer than the text model's window take one more batched pass (`sentence_units`), and
    decide a caution at most: over the development crisis set, letting one of a long post's many sentences decide a
    crisis made more false crises than the crisis classifier, which reads the whole post, at the same recall (SAFETY.md)."""
    parts, own = sentence_units(texts)
    units = list(texts) + [s for _, s in parts]
    owner = list(range(len(texts))) + [i for i, _ in parts]
    if parts:
        features = np.concatenate([features, unit_features(parts, own, features, features_of)])
    return signs.read(signs.probs(features, units), owner, len(texts), [False] * len(texts) + own)


def save_warning_sign_model(m: WarningSignModel, path: Path, meta: dict[str, object]) -> None:
    np.savez_compressed(
        path,
        categories=np.array(json.dumps(list(m.categories))),
        tiers=np.array(json.dumps(list(m.tiers))),
        alone=np.array(json.dumps(list(m.alone))),
        mean=m.mean.astype(np.float32),
        scale=m.scale.astype(np.float32),
        w_embedding=m.w_embedding.astype(np.float32),
        vocab=np.array(json.dumps(sorted(m.vocab, key=m.vocab.__getitem__))),
        idf=m.idf.astype(np.float32),
        w_lexical=m.w_lexical.astype(np.float32),
        bias=m.bias.astype(np.float32),
        crisis_threshold=np.float32(m.crisis_threshold),
        caution_threshold=np.float32(m.caution_threshold),
        meta=np.array(json.dumps(meta)),
    )


def load_warning_sign_model(path: str | Path) -> WarningSignModel:
    with np.load(path, allow_pickle=False) as z:
        terms = json.loads(str(z["vocab"]))
        return WarningSignModel(
            categories=tuple(json.loads(str(z["categories"]))),
            tiers=tuple(json.loads(str(z["tiers"]))),
            alone=tuple(json.loads(str(z["alone"]))),
            mean=z["mean"].astype(np.float64),
            scale=z["scale"].astype(np.float64),
            w_embedding=z["w_embedding"].astype(np.float64),
            vocab={t: i for i, t in enumerate(terms)},
            idf=z["idf"].astype(np.float64),
            w_lexical=z["w_lexical"].astype(np.float64),
            bias=z["bias"].astype(np.float64),
            crisis_threshold=float(z["crisis_threshold"]),
            caution_threshold=float(z["caution_threshold"]),
        )


def default_warning_sign_model_path() -> Path:
    return Path(__file__).resolve().parent / "models" / "warning_signs.npz"
