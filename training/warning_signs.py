"""The warning-sign scorer (perception/warning_signs.py): trained on the category examples of training/warning_signs
and their hard negatives, with GoEmotions train comments as ordinary messages; reported the honest way.

    persona-agent train warning-signs [--report-only]   # ~4 min on 2 cores

Method (issue #41): the examples come in two halves written apart in different registers. The report fits on one
half and scores the other, then swaps; thresholds are picked on out-of-fold scores of the training half only (never
on the reported half). The shipped model fits both halves, its thresholds again out of fold. Set C
(`unseen_c.yaml`) trains nothing: it is the shipped model's unseen set, read by the live-server tests.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.safety import RiskFeatures, explicit_phrase, lexical_terms, load_risk_features
from perception.warning_signs import (
    WarningSignModel,
    crisis_columns,
    save_warning_sign_model,
    sentence_units,
    unit_features,
)
from training.safety import WarningSigns, features, read_warning_signs, threshold_for_fpr

# Register variants of every training sentence, so that a half written in one register also teaches the other:
# texting (lower case, no punctuation, common shortenings) and plain (the shortenings spelled out, a capital and a
# full stop). Only training sentences are varied; nothing reported is.
_TO_TEXTING = [
    (r"\bI am\b", "im"),
    (r"\bI'm\b", "im"),
    (r"\byou\b", "u"),
    (r"\bare\b", "r"),
    (r"\bdon't\b", "dont"),
    (r"\bcan't\b", "cant"),
    (r"\bwould\b", "wud"),
    (r"\bbecause\b", "bc"),
    (r"\btomorrow\b", "tmrw"),
    (r"\bI have\b", "ive"),
    (r"\bI will\b", "ill"),
    (r"\bdo not\b", "dont"),
    (r"\bcannot\b", "cant"),
    (r"\bwill not\b", "wont"),
    (r"\bwithout\b", "w/o"),
    (r"\bwith\b", "w"),
]
_TO_PLAIN = [
    (r"\bu\b", "you"),
    (r"\bur\b", "your"),
    (r"\br\b", "are"),
    (r"\bim\b", "I am"),
    (r"\bi\b", "I"),
    (r"\bdont\b", "do not"),
    (r"\bcant\b", "cannot"),
    (r"\bwont\b", "will not"),
    (r"\bwud\b", "would"),
    (r"\bbc\b", "because"),
    (r"\btmrw\b", "tomorrow"),
    (r"\btbh\b", "to be honest"),
    (r"\bive\b", "I have"),
    (r"\bidk\b", "I do not know"),
    (r"\bw/o\b", "without"),
    (r"\bw\b", "with"),
    (r"\bn\b", "and"),
    (r"\brn\b", "right now"),
    (r"\bngl\b", "not going to lie"),
    (r"\bppl\b", "people"),
    (r"\bthx\b", "thanks"),
    (r"\bty\b", "thank you"),
    (r"\babt\b", "about"),
    (r"\bgonna\b", "going to"),
    (r"\bwanna\b", "want to"),
    (r"\bthru\b", "through"),
    (r"\bnite\b", "night"),
    (r"\blol\b", ""),
    (r"\bfr\b", ""),
]


def texting(text: str) -> str:
    for a, b in _TO_TEXTING:
        text = re.sub(a, b, text, flags=re.I)
    return re.sub(r"[.,!?']", "", text).lower()


def plain(text: str) -> str:
    for a, b in _TO_PLAIN:
        text = re.sub(a, b, text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(("?", ".", "!")) else ".") if text else text


def variants(text: str) -> list[str]:
    return list(dict.fromkeys([text, texting(text), plain(text)]))


@dataclass(frozen=True)
class Settings:
    c: float = 16.0  # L2 strength (smaller = stronger)
    lexical_weight: float = 2.0  # of the TF-IDF view against the embedding view
    caution_fpr: float = 0.002  # out-of-fold share of ordinary messages a caution may reach
    crisis_fpr: float = 0.002  # ... and a crisis
    hard_crisis_fpr: float = 0.05  # out-of-fold share of the hard negatives a crisis may reach
    balanced: bool = False  # class weights inversely proportional to class sizes
    floor: float = 0.1  # no threshold below this


@dataclass(frozen=True)
class Examples:
    """Training units: texts, their features, class (0 none, k + 1 category k) and kind (sign / hard / everyday)."""

    texts: list[str]
    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray

    def take(self, idx: np.ndarray) -> Examples:
        return Examples([self.texts[i] for i in idx], self.x[idx], self.y[idx], self.kind[idx])

    def __add__(self, other: Examples) -> Examples:
        return Examples(
            self.texts + other.texts,
            np.concatenate([self.x, other.x]),
            np.concatenate([self.y, other.y]),
            np.concatenate([self.kind, other.kind]),
        )


def examples(reader: RiskFeatures, signs: WarningSigns, halves: tuple[str, ...], augment: bool) -> Examples:
    rows: list[tuple[str, int, str]] = []  # text, class, kind
    for h in halves:
        for k, name in enumerate(signs.tiers):
            rows += [(v, k + 1, "sign") for t in signs.halves[h][name] for v in (variants(t) if augment else [t])]
        rows += [(v, 0, "hard") for t in signs.negatives[h] for v in (variants(t) if augment else [t])]
    texts = [t for t, _, _ in rows]
    return Examples(
        texts, features(reader, texts), np.array([y for _, y, _ in rows]), np.array([k for _, _, k in rows])
    )


def everyday(reader: RiskFeatures, folder: Path, n: int, seed: int = 0) -> Examples:
    """n GoEmotions train comments drawn by seed, less any with an explicit risk phrase: ordinary messages."""
    rows = (folder / "train.tsv").read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(seed)
    texts = [t for t in (rows[i].split("\t")[0] for i in rng.permutation(len(rows))) if explicit_phrase(t) is None][:n]
    return Examples(texts, features(reader, texts), np.zeros(len(texts), np.int64), np.array(["everyday"] * len(texts)))


def design(scaler: Any, vectorizer: Any, lexical_weight: float, x: np.ndarray, texts: list[str]) -> Any:
    """The sparse matrix the regression reads: standardised features (scaled by 1/sqrt(F)) beside the TF-IDF terms
    (scaled by `lexical_weight`), as `WarningSignModel.probs` computes it."""
    import scipy.sparse as sp

    emb = scaler.transform(x) / np.sqrt(x.shape[1])
    return sp.hstack([sp.csr_matrix(emb), lexical_weight * vectorizer.transform(texts)]).tocsr()


@dataclass(frozen=True)
class Fitted:
    scaler: Any
    vectorizer: Any
    clf: Any
    lexical_weight: float

    def probs(self, x: np.ndarray, texts: list[str]) -> np.ndarray:
        return self.clf.predict_proba(design(self.scaler, self.vectorizer, self.lexical_weight, x, texts))


def fit(ex: Examples, cfg: Settings) -> Fitted:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(ex.x)
    vec = TfidfVectorizer(analyzer=lexical_terms, sublinear_tf=True, min_df=2).fit(ex.texts)
    clf = LogisticRegression(C=cfg.c, max_iter=5000, class_weight="balanced" if cfg.balanced else None)
    return Fitted(
        scaler, vec, clf.fit(design(scaler, vec, cfg.lexical_weight, ex.x, ex.texts), ex.y), cfg.lexical_weight
    )


@dataclass(frozen=True)
class Sentences:
    """The sentences of multi-sentence training messages (`perception.warning_signs.sentence_units`), each with the
    index of its message and the features it is served with: served, a message is read as a whole and sentence by
    sentence, so thresholds are picked on the same reading."""

    texts: list[str]
    x: np.ndarray
    owner: np.ndarray
    own: np.ndarray  # [S] bool: read in a pass of its own (a long message's sentence; decides a caution at most)


def split_sentences(reader: RiskFeatures, ex: Examples) -> Sentences:
    parts, own = sentence_units(ex.texts)
    x = unit_features(parts, own, ex.x, lambda s: features(reader, s))
    return Sentences([s for _, s in parts], x, np.array([i for i, _ in parts], np.int64), np.array(own, bool))


def oof_tier_scores(
    ex: Examples, sents: Sentences, cfg: Settings, tiers: list[str], seed: int = 0, folds: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ([N] crisis score, [N] any-category score) of every training message as served: the largest
    over the message and its sentences, each scored by the fold's model that did not train on the message."""
    from sklearn.model_selection import StratifiedKFold

    cols = crisis_columns(tiers)
    crisis, anyrisk = np.zeros(len(ex.y)), np.zeros(len(ex.y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(ex.x, ex.y):
        f = fit(ex.take(tr), cfg)
        p = f.probs(ex.x[te], [ex.texts[i] for i in te])
        crisis[te], anyrisk[te] = p[:, cols].sum(axis=1), 1.0 - p[:, 0]
        su = np.flatnonzero(np.isin(sents.owner, te))
        if len(su):
            ps = f.probs(sents.x[su], [sents.texts[i] for i in su])
            np.maximum.at(crisis, sents.owner[su], np.where(sents.own[su], 0.0, ps[:, cols].sum(axis=1)))
            np.maximum.at(anyrisk, sents.owner[su], 1.0 - ps[:, 0])
    return crisis, anyrisk


def pick_thresholds(crisis: np.ndarray, anyrisk: np.ndarray, ex: Examples, cfg: Settings) -> tuple[float, float]:
    """(crisis, caution): the lowest thresholds (at least `floor`) whose out-of-fold false positives stay within the
    settings' rates: on ordinary messages for both tiers, and on the hard negatives for a crisis."""

    def lowest(score: np.ndarray, rates: list[tuple[np.ndarray, float]]) -> float:
        return max([cfg.floor] + [threshold_for_fpr(score[m], np.zeros(int(m.sum())), r) for m, r in rates if m.any()])

    everyday_, hard = ex.kind == "everyday", ex.kind == "hard"
    t_crisis = lowest(crisis, [(everyday_, cfg.crisis_fpr), (hard, cfg.hard_crisis_fpr)])
    t_caution = lowest(anyrisk, [(everyday_, cfg.caution_fpr)])
    return t_crisis, t_caution


def to_model(f: Fitted, signs: WarningSigns, t_crisis: float, t_caution: float) -> WarningSignModel:
    nf = len(f.scaler.mean_)
    coef = f.clf.coef_
    return WarningSignModel(
        categories=tuple(signs.tiers),
        tiers=tuple(signs.tiers.values()),  # type: ignore[arg-type]
        alone=tuple(signs.alone.values()),  # type: ignore[arg-type]
        mean=f.scaler.mean_.astype(np.float64),
        scale=f.scaler.scale_.astype(np.float64),
        w_embedding=coef[:, :nf].astype(np.float64),
        vocab={t: i for i, t in enumerate(f.vectorizer.get_feature_names_out().tolist())},
        idf=f.vectorizer.idf_.astype(np.float64),
        w_lexical=(f.lexical_weight * coef[:, nf:]).astype(np.float64),
        bias=f.clf.intercept_.astype(np.float64),
        crisis_threshold=t_crisis,
        caution_threshold=t_caution,
    )


def train_model(
    reader: RiskFeatures, signs: WarningSigns, ordinary: Examples, halves: tuple[str, ...], cfg: Settings
) -> WarningSignModel:
    ex = examples(reader, signs, halves, augment=True) + ordinary
    tiers = list(signs.tiers.values())
    t_crisis, t_caution = pick_thresholds(*oof_tier_scores(ex, split_sentences(reader, ex), cfg, tiers), ex, cfg)
    return to_model(fit(ex, cfg), signs, t_crisis, t_caution)


def train(args: argparse.Namespace) -> None:
    t0 = time.time()
    reader = load_risk_features(threads=args.threads)
    signs = read_warning_signs()
    cfg = Settings(c=args.c, lexical_weight=args.lexical_weight)
    ordinary = everyday(reader, Path(args.everyday), args.everyday_n)
    for tr, te in (("a", "b"), ("b", "a")):
        m = train_model(reader, signs, ordinary, (tr,), cfg)
        print(
            f"trained on half {tr.upper()}, thresholds crisis >= {m.crisis_threshold:.3f}, caution >= "
            f"{m.caution_threshold:.3f}; reported on half {te.upper()} (bench/safety.py prints the served layer)"
        )
    if args.report_only:
        return
    m = train_model(reader, signs, ordinary, ("a", "b"), cfg)
    out = Path(args.out)
    save_warning_sign_model(
        m,
        out,
        {
            "trained_on": f"training/warning_signs half A + half B (with register variants), {len(ordinary.texts)} "
            "GoEmotions train comments as ordinary messages",
            "C": cfg.c,
            "lexical_weight": cfg.lexical_weight,
            "caution_fpr": cfg.caution_fpr,
            "crisis_fpr": cfg.crisis_fpr,
            "hard_crisis_fpr": cfg.hard_crisis_fpr,
            "balanced": cfg.balanced,
            "seconds": round(time.time() - t0),
        },
    )
    print(
        f"wrote {out} (crisis >= {m.crisis_threshold:.3f}, caution >= {m.caution_threshold:.3f}) in "
        f"{time.time() - t0:.0f} s"
    )
