"""Crisis-risk classifier: logistic regression on the text model's embedding + emotion probabilities, trained on
`shared/data/crisis` (240 risk, 480 non-risk), with the threshold set for high recall.

    persona-agent train safety [--recall 0.95]

The set is both the only training data and the only evaluation data we have, so every figure printed is
out-of-fold (stratified 5-fold, repeated): thresholds are picked on the training folds only.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.safety import explicit_phrase
from perception.text_model import TextEmotionModel, default_text_model_dir, load_text_model


@dataclass(frozen=True)
class CrisisSet:
    texts: list[str]
    y: np.ndarray  # [N] 1 = risk
    kind: list[str]  # risk / hard / easy


def read_crisis(folder: Path) -> CrisisSet:
    texts, y, kind = [], [], []
    for name, k in (("risk", "risk"), ("nonrisk_hard", "hard"), ("nonrisk_easy", "easy")):
        for line in open(folder / f"{name}.jsonl", encoding="utf-8"):
            row = json.loads(line)
            texts.append(row["text"])
            y.append(1 if row["label"] == "risk" else 0)
            kind.append(k)
    return CrisisSet(texts, np.array(y), kind)


def features(model: TextEmotionModel, texts: list[str]) -> np.ndarray:
    """[N, 384 + 28]: sentence embedding and GoEmotions probabilities, exactly as the live layer computes them."""
    from agent.analysis import risk_features

    return np.concatenate([risk_features(model, texts[s:s + 64]) for s in range(0, len(texts), 64)]).astype(np.float32)


def threshold_for_recall(scores: np.ndarray, y: np.ndarray, recall: float) -> float:
    """The highest threshold that keeps at least `recall` of the positives."""
    pos = np.sort(scores[y == 1])
    k = int(np.floor((1 - recall) * len(pos)))
    return float(pos[k]) if len(pos) else 0.5


def threshold_for_fpr(scores: np.ndarray, y: np.ndarray, fpr: float) -> float:
    """The lowest threshold that flags at most `fpr` of the negatives."""
    neg = np.sort(scores[y == 0])[::-1]
    k = int(np.floor(fpr * len(neg)))
    return float(neg[k]) + 1e-6 if len(neg) else 0.5


def fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced")).fit(x, y)


def oof_scores(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> np.ndarray:
    """Out-of-fold probabilities: thresholds set on these hold on new data; in-sample scores would be overconfident."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    pipe = fit(x[:2], np.array([0, 1]), c)  # unfitted template with the same settings
    return cross_val_predict(pipe, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed), method="predict_proba")[:, 1]


def thresholds(x: np.ndarray, y: np.ndarray, rules: np.ndarray, c: float, recall: float, fpr: float, seed: int) -> tuple[float, float]:
    """(crisis, caution) thresholds from out-of-fold scores of the messages the rules do not already catch."""
    s = oof_scores(x, y, c, seed)
    keep = ~rules
    return threshold_for_fpr(s[keep], y[keep], fpr), threshold_for_recall(s[keep], y[keep], recall)


def cross_validate(data: CrisisSet, x: np.ndarray, c: float, recall: float, fpr: float, repeats: int = 3) -> dict[str, float]:
    """Nested: outer 5-fold for the figures; thresholds from an inner out-of-fold pass on the training folds only."""
    from sklearn.model_selection import StratifiedKFold

    rules = np.array([explicit_phrase(t) is not None for t in data.texts])
    kinds = np.array(data.kind)
    res: dict[str, list[float]] = {}
    for r in range(repeats):
        crisis = np.zeros(len(data.y), dtype=bool)
        anyrisk = np.zeros(len(data.y), dtype=bool)
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=r).split(x, data.y):
            t_crisis, t_caution = thresholds(x[tr], data.y[tr], rules[tr], c, recall, fpr, seed=100 + r)
            s = fit(x[tr], data.y[tr], c).predict_proba(x[te])[:, 1]
            crisis[te] = rules[te] | (s >= t_crisis)
            anyrisk[te] = crisis[te] | (s >= t_caution)
        for name, pred in (("crisis", crisis), ("any", anyrisk)):
            for k, v in (("recall", pred[data.y == 1].mean()), ("fpr", pred[data.y == 0].mean()),
                         ("fpr_hard", pred[kinds == "hard"].mean()), ("fpr_easy", pred[kinds == "easy"].mean())):
                res.setdefault(f"{name}_{k}", []).append(float(v))
    return {k: float(np.mean(v)) for k, v in res.items()}


def train(args: argparse.Namespace) -> None:
    data = read_crisis(Path(args.data))
    model = load_text_model(default_text_model_dir(), threads=args.threads)
    x = features(model, data.texts)
    cv = cross_validate(data, x, args.c, args.recall, args.fpr)
    for level, what in (("crisis", "fixed crisis reply"), ("any", "crisis reply or caution prompt")):
        print(f"{what:<32} out-of-fold (5-fold x3, nested thresholds): recall {cv[f'{level}_recall']:.3f}, "
              f"false positives {cv[f'{level}_fpr']:.3f} (hard negatives {cv[f'{level}_fpr_hard']:.3f}, "
              f"easy {cv[f'{level}_fpr_easy']:.3f})")
    rules = np.array([explicit_phrase(t) is not None for t in data.texts])
    t_crisis, t_caution = thresholds(x, data.y, rules, args.c, args.recall, args.fpr, seed=0)
    pipe = fit(x, data.y, args.c)
    scaler, clf = pipe[0], pipe[1]
    out = Path(args.out)
    np.savez(out, mean=scaler.mean_.astype(np.float32), scale=scaler.scale_.astype(np.float32),
             coef=clf.coef_[0].astype(np.float32), bias=np.float32(clf.intercept_[0]),
             crisis_threshold=np.float32(t_crisis), caution_threshold=np.float32(t_caution),
             meta=json.dumps({"trained_on": "shared/data/crisis (240 risk, 480 non-risk)", "C": args.c,
                              "caution_recall_target": args.recall, "crisis_fpr_target": args.fpr,
                              **{f"cv_{k}": round(v, 4) for k, v in cv.items()}}))
    print(f"wrote {out} (crisis >= {t_crisis:.3f}, caution >= {t_caution:.3f})")
