"""Crisis-risk classifier: two logistic regressions, one on the text model's embedding + emotion probabilities and
one on TF-IDF of words and character n-grams, averaged; trained on `shared/data/crisis` (240 risk, 480 non-risk),
with the thresholds set for a low false-positive rate (crisis) and high recall (caution).

    persona-agent train safety [--recall 0.95]

The set is both the only training data and the only evaluation data we have, so every figure printed is
out-of-fold (stratified 5-fold, repeated): thresholds are picked on the training folds only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.safety import RiskFeatures, decide_level, explicit_phrase, lexical_terms, load_risk_features
from perception.warning_signs import (
    SignReading,
    default_warning_sign_model_path,
    load_warning_sign_model,
    read_messages,
)


@dataclass(frozen=True)
class CrisisSet:
    texts: list[str]
    y: np.ndarray  # [N] 1 = risk
    kind: list[str]  # risk / hard / easy


def read_crisis(folder: Path) -> CrisisSet:
    texts, y, kind = [], [], []
    for name, k in (("risk", "risk"), ("nonrisk_hard", "hard"), ("nonrisk_easy", "easy")):
        with open(folder / f"{name}.jsonl", encoding="utf-8") as fh:
            lines = list(fh)
        for line in lines:
            row = json.loads(line)
            texts.append(row["text"])
            y.append(1 if row["label"] == "risk" else 0)
            kind.append(k)
    return CrisisSet(texts, np.array(y), kind)


def features(reader: RiskFeatures, texts: list[str]) -> np.ndarray:
    """[N, 384 + 768 + 28]: the text model's embedding, the safety encoder's, the 28 GoEmotions probabilities, exactly
    as the live layer computes them (`perception.safety.risk_features`)."""
    return np.concatenate([reader(texts[s : s + 64]) for s in range(0, len(texts), 64)]).astype(np.float32)


def threshold_for_fpr(scores: np.ndarray, y: np.ndarray, fpr: float) -> float:
    """The lowest threshold that flags at most `fpr` of the negatives."""
    neg = np.sort(scores[y == 0])[::-1]
    k = int(np.floor(fpr * len(neg)))
    return float(neg[k]) + 1e-6 if len(neg) else 0.5


@dataclass(frozen=True)
class Fitted:
    """Both learned parts, fitted on the same messages; `score` mixes them as `RiskClassifier.score` does."""

    embedding: Any  # sklearn pipeline: StandardScaler + LogisticRegression over `features`
    vectorizer: Any  # TfidfVectorizer(analyzer=lexical_terms, sublinear_tf=True)
    lexical: Any  # LogisticRegression over the TF-IDF vectors
    weight: float  # of the embedding part

    def score(self, x: np.ndarray, texts: list[str]) -> np.ndarray:
        s1 = self.embedding.predict_proba(x)[:, 1]
        s2 = self.lexical.predict_proba(self.vectorizer.transform(texts))[:, 1]
        return self.weight * s1 + (1 - self.weight) * s2


@dataclass(frozen=True)
class Settings:
    c: float  # L2 strength of the embedding part (smaller = stronger)
    c_lex: float  # of the lexical part
    weight: float  # of the embedding part in the mix


@dataclass(frozen=True)
class Everyday:
    """Ordinary messages added to every fit as extra non-risk examples (never scored for the figures): GoEmotions
    *train* comments — happy news, thanks, jokes — which the 720 crisis-set posts barely cover, so that "I finally
    finished my thesis, I can't believe it!" does not read like "I've finally given in"."""

    x: np.ndarray
    texts: list[str]


def everyday_negatives(reader: RiskFeatures, folder: Path, n: int, seed: int = 0) -> Everyday:
    """n GoEmotions train comments drawn by seed, less any with an explicit risk phrase (those are not ordinary)."""
    rows = (folder / "train.tsv").read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(seed)
    texts = [t for t in (rows[i].split("\t")[0] for i in rng.permutation(len(rows))) if explicit_phrase(t) is None][:n]
    return Everyday(features(reader, texts), texts)


def fit(x: np.ndarray, texts: list[str], y: np.ndarray, cfg: Settings, extra: Everyday | None = None) -> Fitted:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if extra is not None and len(extra.texts):
        x, texts = np.concatenate([x, extra.x]), list(texts) + extra.texts
        y = np.concatenate([y, np.zeros(len(extra.texts), y.dtype)])
    emb = make_pipeline(StandardScaler(), LogisticRegression(C=cfg.c, max_iter=5000, class_weight="balanced")).fit(x, y)
    vec = TfidfVectorizer(analyzer=lexical_terms, sublinear_tf=True, min_df=2)
    lex = LogisticRegression(C=cfg.c_lex, max_iter=5000, class_weight="balanced").fit(vec.fit_transform(texts), y)
    return Fitted(emb, vec, lex, cfg.weight)


Signs = Sequence[SignReading] | None


def _sign(signs: Signs, i: int) -> SignReading | None:
    return signs[i] if signs is not None else None


def read_signs(reader: RiskFeatures, texts: list[str], x: np.ndarray) -> list[SignReading] | None:
    """The shipped warning-sign scorer's reading of each message, from their `features` `x` (None when it has not
    been trained yet): it trains on training/warning_signs only, so its readings of other sets are out of sample."""
    if not default_warning_sign_model_path().exists():
        return None
    signs = load_warning_sign_model(default_warning_sign_model_path())
    out: list[SignReading] = []
    for s in range(0, len(texts), 64):  # a long post's sentences take a pass of their own: 64 posts a batch
        out += read_messages(signs, reader, texts[s : s + 64], x[s : s + 64])
    return out


def caught(texts: list[str], signs: Signs) -> np.ndarray:
    """[N] whether the rules alone make a crisis of each message: an explicit phrase or a crisis-tier warning sign."""
    return np.array(
        [
            explicit_phrase(t) is not None or (s is not None and s.tier == "crisis")
            for i, t in enumerate(texts)
            for s in [_sign(signs, i)]
        ]
    )


def oof_scores(
    x: np.ndarray, texts: list[str], y: np.ndarray, cfg: Settings, seed: int, extra: Everyday | None = None
) -> np.ndarray:
    """Out-of-fold scores: thresholds set on these hold on new data; in-sample scores would be overconfident."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        out[te] = fit(x[tr], [texts[i] for i in tr], y[tr], cfg, extra).score(x[te], [texts[i] for i in te])
    return out


def caution_for_recall(
    scores: np.ndarray,
    y: np.ndarray,
    texts: list[str],
    probs: np.ndarray,
    t_crisis: float,
    recall: float,
    signs: Signs = None,
) -> float:
    """The highest caution threshold at which the served decision (`decide_level`: rules, crisis threshold, warning
    signs, and the learned caution dropped on positive or laughing messages) flags at least `recall` of the
    positives. Picking it on the raw scores instead would let the suppressions eat into the recall afterwards."""
    risk = np.flatnonzero(y == 1)
    flagged = np.array(
        [
            decide_level(texts[i], float(scores[i]), probs[i], t_crisis, np.inf, _sign(signs, int(i)))[0] != "none"
            for i in risk
        ]
    )
    # Which of the others a caution threshold can reach: those the suppressions leave to the learned score.
    reachable = (
        np.array(
            [
                decide_level(texts[i], float(scores[i]), probs[i], t_crisis, -np.inf, _sign(signs, int(i)))[0] != "none"
                for i in risk
            ]
        )
        & ~flagged
    )
    need = int(np.ceil(recall * len(risk))) - int(flagged.sum())
    cand = np.sort(scores[risk][reachable])[::-1]
    if need <= 0:
        return float(cand[0]) + 1e-6 if len(cand) else 1.0
    return float(cand[min(need, len(cand)) - 1]) if len(cand) else 0.0


def thresholds(
    x: np.ndarray,
    texts: list[str],
    y: np.ndarray,
    rules: np.ndarray,
    cfg: Settings,
    recall: float,
    fpr: float,
    seed: int,
    extra: Everyday | None = None,
    signs: Signs = None,
) -> tuple[float, float]:
    """(crisis, caution) thresholds from out-of-fold scores: crisis for `fpr` of all the negatives, counting those the
    rules (explicit phrases and crisis-tier warning signs) already make a crisis; caution for `recall` of the served
    decision (`caution_for_recall`)."""
    s = oof_scores(x, texts, y, cfg, seed, extra)
    keep = ~rules
    left = max(0.0, fpr * int((y == 0).sum()) - int((rules & (y == 0)).sum()))  # negatives the score may still flag
    t_crisis = threshold_for_fpr(s[keep], y[keep], left / max(1, int((keep & (y == 0)).sum())))
    return t_crisis, caution_for_recall(s, y, texts, x[:, -28:], t_crisis, recall, signs)


def cross_validate(
    data: CrisisSet,
    x: np.ndarray,
    cfg: Settings,
    recall: float,
    fpr: float,
    repeats: int = 3,
    extra: Everyday | None = None,
    signs: Signs = None,
) -> dict[str, float]:
    """Nested: outer 5-fold for the figures; thresholds from an inner out-of-fold pass on the training folds only.
    `signs`: the warning signs the scorer by meaning reads in each message (it never trains on this set)."""
    from sklearn.model_selection import StratifiedKFold

    rules = caught(data.texts, signs)
    kinds = np.array(data.kind)
    res: dict[str, list[float]] = {}
    for r in range(repeats):
        crisis = np.zeros(len(data.y), dtype=bool)
        anyrisk = np.zeros(len(data.y), dtype=bool)
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=r).split(x, data.y):
            tr_texts = [data.texts[i] for i in tr]
            t_crisis, t_caution = thresholds(
                x[tr],
                tr_texts,
                data.y[tr],
                rules[tr],
                cfg,
                recall,
                fpr,
                seed=100 + r,
                extra=extra,
                signs=[signs[i] for i in tr] if signs else None,
            )
            s = fit(x[tr], tr_texts, data.y[tr], cfg, extra).score(x[te], [data.texts[i] for i in te])
            # the served decision (perception.safety.decide_level): rules, warning signs, positive and laughing
            levels = [
                decide_level(data.texts[i], float(si), x[i, -28:], t_crisis, t_caution, _sign(signs, i))[0]
                for i, si in zip(te, s)
            ]
            crisis[te] = np.array([lv == "crisis" for lv in levels])
            anyrisk[te] = np.array([lv != "none" for lv in levels])
        for name, pred in (("crisis", crisis), ("any", anyrisk)):
            for k, v in (
                ("recall", pred[data.y == 1].mean()),
                ("fpr", pred[data.y == 0].mean()),
                ("fpr_hard", pred[kinds == "hard"].mean()),
                ("fpr_easy", pred[kinds == "easy"].mean()),
            ):
                res.setdefault(f"{name}_{k}", []).append(float(v))
    return {k: float(np.mean(v)) for k, v in res.items()}


def train(args: argparse.Namespace) -> None:
    data = read_crisis(Path(args.data))
    reader = load_risk_features(threads=args.threads)
    x = features(reader, data.texts)
    cfg = Settings(c=args.c, c_lex=args.c_lex, weight=args.embedding_weight)
    extra = everyday_negatives(reader, Path(args.everyday), args.everyday_n) if args.everyday_n else None
    signs = read_signs(reader, data.texts, x)
    cv = cross_validate(data, x, cfg, args.recall, args.fpr, extra=extra, signs=signs)
    for level, what in (("crisis", "fixed crisis reply"), ("any", "crisis reply or caution prompt")):
        print(
            f"{what:<32} out-of-fold (5-fold x3, nested thresholds): recall {cv[f'{level}_recall']:.3f}, "
            f"false positives {cv[f'{level}_fpr']:.3f} (hard negatives {cv[f'{level}_fpr_hard']:.3f}, "
            f"easy {cv[f'{level}_fpr_easy']:.3f})"
        )
    t_crisis, t_caution = thresholds(
        x, data.texts, data.y, caught(data.texts, signs), cfg, args.recall, args.fpr, seed=0, extra=extra, signs=signs
    )
    fitted = fit(x, data.texts, data.y, cfg, extra)
    scaler, clf = fitted.embedding[0], fitted.embedding[1]
    out = Path(args.out)
    np.savez_compressed(
        out,
        mean=scaler.mean_.astype(np.float32),
        scale=scaler.scale_.astype(np.float32),
        coef=clf.coef_[0].astype(np.float32),
        bias=np.float32(clf.intercept_[0]),
        lex_vocab=np.array(json.dumps(fitted.vectorizer.get_feature_names_out().tolist())),
        lex_idf=fitted.vectorizer.idf_.astype(np.float32),
        lex_coef=fitted.lexical.coef_[0].astype(np.float32),
        lex_bias=np.float32(fitted.lexical.intercept_[0]),
        embedding_weight=np.float32(cfg.weight),
        crisis_threshold=np.float32(t_crisis),
        caution_threshold=np.float32(t_caution),
        meta=json.dumps(
            {
                "trained_on": "shared/data/crisis (240 risk, 480 non-risk)"
                + (f" + {len(extra.texts)} GoEmotions train comments as non-risk" if extra else ""),
                "C": args.c,
                "C_lexical": args.c_lex,
                "embedding_weight": args.embedding_weight,
                "caution_recall_target": args.recall,
                "crisis_fpr_target": args.fpr,
                **{f"cv_{k}": round(v, 4) for k, v in cv.items()},
            }
        ),
    )
    print(f"wrote {out} (crisis >= {t_crisis:.3f}, caution >= {t_caution:.3f})")


WARNING_SIGNS = Path(__file__).resolve().parent / "warning_signs"


@dataclass(frozen=True)
class WarningSigns:
    """training/warning_signs: the categories (name -> tier), and per half (A, B) the examples of each category and
    the hard negatives. A scorer tuned on one half is reported on the other (issue #41)."""

    tiers: dict[str, str]
    alone: dict[str, str]  # name -> the tier when nothing earlier in the conversation was read at risk
    halves: dict[str, dict[str, list[str]]]  # "a" | "b" -> category -> examples
    negatives: dict[str, list[str]]  # "a" | "b" -> hard negatives


def read_warning_signs(root: Path = WARNING_SIGNS) -> WarningSigns:
    import yaml

    cats = yaml.safe_load((root / "categories.yaml").read_text())["categories"]
    halves = {h: yaml.safe_load((root / f"half_{h}.yaml").read_text()) for h in ("a", "b")}
    for h, examples in halves.items():
        assert set(examples) == set(cats), f"half {h}: categories differ from categories.yaml"
    return WarningSigns(
        tiers={name: c["tier"] for name, c in cats.items()},
        alone={name: c.get("alone", c["tier"]) for name, c in cats.items()},
        halves=halves,
        negatives={h: yaml.safe_load((root / f"negatives_{h}.yaml").read_text()) for h in ("a", "b")},
    )
