"""The learned strategy chooser (persona/chooser.py): trained on ESConv, and the served policy evaluated on any
ESConv-format file.

Every supporter turn that answers a seeker turn is one decision. The seeker's messages so far go through the real
perception path, one at a time (the text model -> gated fusion -> persona tracker, 30 s apart), the message the
supporter answers is read as the server reads it (the text model's and the sentence encoder's features, its kind, its
own emotion), and the supporter's previous strategy is the previous strategy. The chooser learns the supporter's
strategy from that (the text model's embedding through 64 principal components, the 28 emotion probabilities and the
rest; a multinomial logistic regression, its L2 strength chosen by cross-validation over whole train dialogues; valid
stays held out);
`eval strategy` then compares, at every such turn:
- served: the policy as it runs in the server (the chooser proposes among the profile's strategies, rules dispose);
- rules: the policy with no chooser (the rules and the profile's default strategy);
- learned: the chooser alone;
- majority: the most frequent strategy of the chooser's training data.
ESConv is one way of supporting among many, so agreement with it measures fit to that data, not quality.

    persona-agent train strategy [--data ../shared/data/esconv]
    persona-agent eval strategy --dialogues FILE.jsonl [--profile wellbeing_coach]   (tuning/eval_strategy.py)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perception.safety import positive_message
from persona import (
    STRATEGIES,
    TAIL,
    Moment,
    PersonaState,
    PersonaTracker,
    StrategyChooser,
    chooser_features,
    read_style,
)

SECONDS_BETWEEN_MESSAGES = 30.0
CHUNK = 64  # messages per model call (all of ESConv's at once would not fit in memory)
RISK_PROBS = slice(384 + 768, 384 + 768 + 28)  # the text model's 28 label probabilities, last in the reading


@dataclass(frozen=True)
class Readers:
    """The perception path of the server: the text model, the safety features, fusion and the persona tracker."""

    text: Any  # TextEmotionModel
    features: Any  # RiskFeatures (the text model and the sentence encoder)
    fusion: Any  # GatedFusion
    tracker: PersonaTracker


def load_readers(threads: int = 2) -> Readers:
    from fusion.gated import default_fusion_path, load_gated_fusion
    from perception.safety import load_risk_features
    from perception.text_model import load_text_model

    text = load_text_model(threads=threads)
    return Readers(text, load_risk_features(text, threads), load_gated_fusion(default_fusion_path()), PersonaTracker())


@dataclass
class Decisions:
    """One row per supporter turn answering a seeker turn."""

    x: list[np.ndarray] = field(default_factory=list)  # the chooser's features
    moments: list[Moment] = field(default_factory=list)
    states: list[PersonaState] = field(default_factory=list)
    truth: list[str] = field(default_factory=list)  # the supporter's strategy
    dialogue: list[int] = field(default_factory=list)  # which dialogue of the file

    def matrix(self) -> np.ndarray:
        return np.stack(self.x) if self.x else np.zeros((0, 0), np.float32)


def read_dialogues(path: Path) -> list[dict[str, Any]]:
    """An ESConv-format JSONL file: one dialogue per line, `dialog` a list of {speaker: usr|sys, text, strategy}."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            if not isinstance(d, dict) or not isinstance(d.get("dialog"), list):
                raise ValueError(f"{path}:{n}: not an ESConv dialogue (an object with a `dialog` list)")
            out.append(d)
    return out


def _turns(dialogues: list[dict[str, Any]]) -> Iterator[tuple[int, str, str, str | None]]:
    """(dialogue index, speaker, text, strategy) in order."""
    for i, d in enumerate(dialogues):
        for t in d["dialog"]:
            yield i, str(t.get("speaker")), str(t.get("text", "")), t.get("strategy")


def decisions(dialogues: list[dict[str, Any]], r: Readers) -> Decisions:
    """Every decision of `dialogues`, read through the server's perception path (see the module's docstring)."""
    seeker = [text for _, who, text, _ in _turns(dialogues) if who == "usr"]
    signals = (sig for k in range(0, len(seeker), CHUNK) for sig in r.text.perceive_batch(seeker[k : k + CHUNK]))
    out, blocks, block = Decisions(), list[str](), list[str]()
    pending: list[tuple[np.ndarray, int, str | None, PersonaState, str, int]] = []
    current, state, now, prev, percept = -1, PersonaState.initial(0.0), 0.0, None, None
    for i, who, text, strategy in _turns(dialogues):
        if i != current:  # a new dialogue
            current, state, now, prev, percept, block = i, PersonaState.initial(0.0), 0.0, None, None, []
        if who == "usr":
            now += SECONDS_BETWEEN_MESSAGES
            sig = next(signals)
            percept = r.fusion.fuse({"text": sig})
            state = r.tracker.update(state, percept, read_style(text), sig.confidence, now)
            block.append(text)
            continue
        if block and percept is not None and strategy in STRATEGIES:
            joined = " ".join(block)
            pending.append((percept.distribution, state.turns, prev, state, strategy, i))
            blocks.append(joined)
        if strategy in STRATEGIES:
            prev = strategy
        block = []
    reading = np.concatenate(
        [r.features(blocks[k : k + CHUNK]) for k in range(0, len(blocks), CHUNK)] or [np.zeros((0, 0))]
    )
    for row, (dist, turns, previous, st, truth, i), text in zip(reading, pending, blocks):
        # read as the server reads it (agent/turn.py decide), once the features are in
        moment = Moment.read(text, dist, turns, previous, positive=positive_message(row[RISK_PROBS]))
        out.dialogue.append(i)
        out.x.append(chooser_features(row, moment, st))
        out.moments.append(moment)
        out.states.append(st)
        out.truth.append(truth)
    return out


EMBEDDING = slice(0, 384)  # the text model's sentence embedding, first in the reading (risk_features)
PCA_DIMS = 64  # the embedding is read through its first 64 principal components: the whole 384 overfits ESConv


def fit(x: np.ndarray, y: list[str], c: float) -> StrategyChooser:
    """PCA of the embedding, a standardiser and a multinomial logistic regression, all linear: folded into one
    [features, strategies] matrix on the raw features (the sentence encoder's part gets zero weight)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    rest = np.r_[RISK_PROBS, x.shape[1] - TAIL : x.shape[1]]
    pca = PCA(PCA_DIMS, random_state=0).fit(x[:, EMBEDDING])
    z = np.concatenate([pca.transform(x[:, EMBEDDING]), x[:, rest]], axis=1)
    m, s = z.mean(0), z.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000).fit((z - m) / s, y)
    order = [list(clf.classes_).index(k) for k in STRATEGIES if k in clf.classes_]
    w, b = clf.coef_.T[:, order] / s[:, None], clf.intercept_[order] - (m / s) @ clf.coef_.T[:, order]
    full = np.zeros((x.shape[1], len(order)), np.float64)
    full[EMBEDDING] = pca.components_.T @ w[:PCA_DIMS]
    full[rest] = w[PCA_DIMS:]
    b = b - pca.mean_ @ full[EMBEDDING]
    return StrategyChooser(
        mean=np.zeros(x.shape[1], np.float32),
        scale=np.ones(x.shape[1], np.float32),
        w1=full.astype(np.float32),
        b1=b.astype(np.float32),
        classes=tuple(str(clf.classes_[k]) for k in order),
        majority=Counter(y).most_common(1)[0][0],
    )


def choose_c(x: np.ndarray, y: list[str], groups: list[int], cs: list[float], folds: int = 5) -> float:
    """The L2 strength with the best accuracy in `folds`-fold cross-validation over whole dialogues of train."""
    g = np.asarray(groups) % folds
    labels = np.asarray(y)
    best_c, best = cs[0], -1.0
    for c in cs:
        hits = 0
        for k in range(folds):
            model = fit(x[g != k], list(labels[g != k]), c)
            hits += int((np.asarray(model.classes)[model.probabilities(x[g == k]).argmax(1)] == labels[g == k]).sum())
        print(f"C={c:g}: {folds}-fold accuracy over train dialogues {hits / len(y):.3f}", flush=True)
        if hits / len(y) > best:
            best_c, best = c, hits / len(y)
    return best_c


def save(chooser: StrategyChooser, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        mean=chooser.mean,
        scale=chooser.scale,
        w1=chooser.w1,
        b1=chooser.b1,
        classes=np.array(chooser.classes),
        majority=np.array(chooser.majority),
    )


def accuracy(pred: list[str], truth: list[str]) -> float:
    return float(np.mean([p == t for p, t in zip(pred, truth)])) if truth else float("nan")


def macro_f1(pred: list[str], truth: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, labels=list(STRATEGIES), average="macro", zero_division=0))


def train(args: argparse.Namespace) -> int:
    data = Path(args.data)
    for split in ("train.jsonl", "valid.jsonl"):
        if not (data / split).exists():
            print(f"error: {data / split} not found (--data names a folder with ESConv train.jsonl and valid.jsonl)")
            return 2
    t0 = time.time()
    r = load_readers(args.threads)
    tr, dev = decisions(read_dialogues(data / "train.jsonl"), r), decisions(read_dialogues(data / "valid.jsonl"), r)
    print(f"{len(tr.truth)} train and {len(dev.truth)} valid decisions read in {time.time() - t0:.0f} s", flush=True)
    x = tr.matrix()
    c = choose_c(x, tr.truth, tr.dialogue, args.c)
    chooser = fit(x, tr.truth, c)
    pred = list(np.asarray(chooser.classes)[chooser.probabilities(dev.matrix()).argmax(1)])
    save(chooser, Path(args.out))
    print(f"chose C={c:g}; valid (held out) accuracy {accuracy(pred, dev.truth):.3f}; wrote {args.out}")
    return 0
