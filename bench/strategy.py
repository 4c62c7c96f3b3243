"""Support strategy: our YAML rules against a strategy model learned from ESConv, on ESConv valid.

For every supporter turn that answers a seeker turn, the seeker's words so far go through the real perception path
(text model → gated fusion → persona tracker, one turn at a time, 30 s apart) and the policy picks a strategy under
the wellbeing-coach profile. That choice is compared with the strategy the human supporter used. The learned peer is
a logistic regression on what the policy can also see at that moment (the last seeker message's sentence embedding
and emotion probabilities, the persona state, the turn number, the supporter's previous strategy), trained on
ESConv train. Also printed: always answering with the most frequent strategy of train.

    .venv/bin/python bench/strategy.py [--train-dialogs 910]

ESConv is one way of supporting among many, so agreement with it measures fit to that data, not quality; the rules
also serve a purpose ESConv does not encode (auditable, editable behaviour).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stats import machine  # noqa: E402

ESCONV = ROOT.parent / "shared" / "data" / "esconv"
STRATEGIES = [s.strip("[]") for s in json.loads((ESCONV / "strategy.json").read_text())]


def decisions(
    path: Path, limit: int | None, text, fusion, tracker, policy, base
) -> tuple[np.ndarray, list[str], list[str]]:
    """Per supporter turn after a seeker turn: (features [N, F], the rules' strategy, the supporter's strategy)."""
    from persona import PersonaState, read_style

    feats, ruled, truth = [], [], []
    with open(path, encoding="utf-8") as fh:
        lines = list(fh)
    for i, line in enumerate(lines):
        if limit is not None and i >= limit:
            break
        d = json.loads(line)
        now = 0.0
        state = PersonaState.initial(now)
        prev, last_emb, turn = "none", None, 0
        signals = iter(text.perceive_batch([t["text"] for t in d["dialog"] if t["speaker"] == "usr"]))
        for t in d["dialog"]:
            if t["speaker"] == "usr":
                now += 30.0
                sig = next(signals)
                percept = fusion.fuse({"text": sig})
                state = tracker.update(state, percept, read_style(t["text"]), sig.confidence, now)
                last_emb = np.concatenate(
                    [
                        np.asarray(sig.embedding, np.float32),
                        np.asarray(list(sig.evidence["labels"].values()), np.float32),
                    ]
                )
                turn += 1
                continue
            strategy = t.get("strategy")
            if last_emb is not None and strategy in STRATEGIES:
                s = state.as_dict()
                numeric = [float(v) for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
                numeric += [float(p) for p in state.distribution]
                onehot = [1.0 if prev == k else 0.0 for k in ["none", *STRATEGIES]]
                feats.append(np.concatenate([last_emb, np.array(numeric + onehot + [min(turn, 30) / 30], np.float32)]))
                ruled.append(policy.decide(state, base).controls.strategy)
                truth.append(strategy)
            prev = strategy or prev
            last_emb = None  # one decision per seeker turn: the supporter's first reply to it
    return np.stack(feats), ruled, truth


def scores(pred: list[str], truth: list[str]) -> tuple[float, float]:
    """Accuracy and macro-F1 over the eight strategies (a strategy never predicted counts as F1 0)."""
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(truth, pred)), float(
        f1_score(truth, pred, labels=STRATEGIES, average="macro", zero_division=0)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--train-dialogs", type=int, default=910, help="ESConv train dialogues for the learned model (910 in all)"
    )
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fusion.gated import default_fusion_path, load_gated_fusion
    from perception.text_model import load_text_model
    from persona import PersonaTracker, load_policy
    from prompts.render import load_profiles

    text = load_text_model(None, threads=2)
    fusion, tracker, policy = load_gated_fusion(default_fusion_path()), PersonaTracker(), load_policy()
    base = load_profiles()["wellbeing_coach"].base
    t0 = time.time()
    x_tr, _, y_tr = decisions(ESCONV / "train.jsonl", args.train_dialogs, text, fusion, tracker, policy, base)
    x_va, rules_va, y_va = decisions(ESCONV / "valid.jsonl", None, text, fusion, tracker, policy, base)
    print(
        f"support strategy on ESConv valid: {len(y_va)} supporter turns ({args.train_dialogs} train dialogues, "
        f"{len(y_tr)} turns, for the learned model); features in {time.time() - t0:.0f} s; {machine()}"
    )
    majority = Counter(y_tr).most_common(1)[0][0]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000, class_weight="balanced"))
    learned = list(clf.fit(x_tr, y_tr).predict(x_va))
    print(f"{'strategy chooser':<52} {'accuracy':>9} {'macro-F1':>9}")
    for name, pred in (
        (f"most frequent in train ({majority})", [majority] * len(y_va)),
        ("ours: rules.yaml via the live perception path", rules_va),
        ("learned: logistic regression on ESConv train", learned),
    ):
        acc, f1 = scores(pred, y_va)
        print(f"{name:<52} {acc:>9.3f} {f1:>9.3f}")
    print("rules' choices:", dict(Counter(rules_va).most_common()))
    print("supporters' choices:", dict(Counter(y_va).most_common()))


if __name__ == "__main__":
    main()
