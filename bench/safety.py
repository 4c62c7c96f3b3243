"""Safety layer on shared/data/crisis (240 risk, 240 hard negatives, 240 easy negatives): recall and false-positive
rate, out-of-fold (the set also trains the classifier), next to the explicit-phrase rules alone; plus idioms.

    .venv/bin/python bench/safety.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stats import machine, row  # noqa: E402

IDIOMS = [
    "this exam is killing me", "I could die of embarrassment", "my feet are killing me lol",
    "I would kill for a coffee right now", "I'm dying to see that movie", "you killed it at the show!",
    "ugh I want to die, this meeting is so boring lol", "that joke killed me haha",
]


def main() -> None:
    from agent import assess_texts, load_risk_model, load_text_model
    from perception.safety import explicit_phrase
    from training.safety import Settings, cross_validate, features, read_crisis

    data = read_crisis(ROOT.parent / "shared" / "data" / "crisis")
    model = load_text_model(None, threads=1)
    x = features(model, data.texts)
    kinds = np.array(data.kind)
    rules = np.array([explicit_phrase(t) is not None for t in data.texts])
    print(f"safety layer — shared/data/crisis: {int(data.y.sum())} risk, {int((kinds == 'hard').sum())} hard and "
          f"{int((kinds == 'easy').sum())} easy negatives; {machine()}")
    print("labels come from subreddits, not clinicians (see its PROVENANCE.md): noisy in both directions")
    print(f"{'detector':<58} {'recall':>7} {'FPR all':>8} {'FPR hard':>9} {'FPR easy':>9}")
    print(f"{'peer: explicit-phrase rules only':<58} {rules[data.y == 1].mean():>7.3f} {rules[data.y == 0].mean():>8.3f} "
          f"{rules[kinds == 'hard'].mean():>9.3f} {rules[kinds == 'easy'].mean():>9.3f}")
    for label, weight in (("embedding model only", 1.0), ("TF-IDF model only", 0.0), ("shipped mix", 0.3)):
        cv = cross_validate(data, x, Settings(c=0.01, c_lex=16.0, weight=weight), 0.95, 0.05, repeats=3)
        for level, name in (("crisis", f"{label}: crisis tier (FPR target 0.05)"),
                            ("any", f"{label}: crisis or caution (recall target 0.95)")):
            print(f"{name:<58} {cv[level + '_recall']:>7.3f} {cv[level + '_fpr']:>8.3f} {cv[level + '_fpr_hard']:>9.3f} "
                  f"{cv[level + '_fpr_easy']:>9.3f}   (out-of-fold, 5-fold x3, nested thresholds)", flush=True)
    risk = load_risk_model()
    levels = [(t, r.level) for t, r in zip(IDIOMS, assess_texts(model, risk, IDIOMS)) if r.level != "none"]
    print(f"idioms the shipped layer reacts to: {len(levels)}/{len(IDIOMS)} {levels}")
    lat = []
    for t in data.texts[:200]:
        t0 = time.perf_counter()
        assess_texts(model, risk, [t])
        lat.append((time.perf_counter() - t0) * 1000)
    print(row("per message (text model pass + risk)", lat, what="1 thread; live turns reuse the emotion pass"))


if __name__ == "__main__":
    main()
