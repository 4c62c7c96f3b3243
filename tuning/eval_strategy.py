"""`persona-agent eval strategy`: the served policy's support strategy at every supporter turn of an ESConv-format
file, read through the server's perception path (training/strategy_chooser.py), against the supporter's — beside
the rules alone, the learned chooser alone and the majority strategy of the chooser's training data.

The last line: `strategy: served=<acc> rules=<acc> learned=<acc> majority=<acc> macro_f1=<served>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from persona import Policy, StrategyChooser, load_policy, load_strategy_chooser
from prompts.render import AgentProfile, load_profiles
from training.strategy_chooser import Decisions, accuracy, decisions, load_readers, macro_f1, read_dialogues


def choices(
    d: Decisions, policy: Policy, profile: AgentProfile, chooser: StrategyChooser | None
) -> dict[str, list[str]]:
    """Per decision: the served policy's strategy, the rules' alone, the chooser's alone."""
    served: list[str] = []
    rules: list[str] = []
    learned: list[str] = []
    for x, moment, state in zip(d.x, d.moments, d.states):
        choice = chooser.choose(x, profile.strategies) if chooser is not None else None
        for out, proposed in ((served, choice), (rules, None)):
            decision = policy.decide(
                state,
                profile.base,
                moment=moment,
                choice=proposed,
                profile_rules=profile.rules,
                allowed=profile.strategies,
            )
            out.append(decision.controls.strategy)
        learned.append(choice.strategy if choice is not None else profile.base.strategy)
    return {"served": served, "rules": rules, "learned": learned}


def eval_cli(args: argparse.Namespace) -> int:
    path = Path(args.dialogues)
    if not path.exists():
        print(f"error: {path} not found", file=sys.stderr)
        return 2
    profiles = load_profiles()
    if args.profile not in profiles:
        print(f"error: no profile {args.profile!r} (one of {', '.join(sorted(profiles))})", file=sys.stderr)
        return 2
    try:
        dialogues = read_dialogues(path)
        chooser = load_strategy_chooser(args.chooser)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.time()
    d = decisions(dialogues, load_readers(args.threads))
    if not d.truth:
        print(f"error: {path} has no supporter turn with an ESConv strategy answering a seeker turn", file=sys.stderr)
        return 2
    picked = choices(d, load_policy(args.policy), profiles[args.profile], chooser)
    picked["majority"] = [chooser.majority] * len(d.truth)
    print(
        f"{len(d.truth)} supporter turns of {len(dialogues)} dialogues, profile {args.profile}, read in {time.time() - t0:.0f} s"
    )
    print(f"{'chooser':<10} {'accuracy':>9} {'macro-F1':>9}")
    for name, pred in picked.items():
        print(f"{name:<10} {accuracy(pred, d.truth):>9.3f} {macro_f1(pred, d.truth):>9.3f}")
    served = Counter(picked["served"]).most_common()
    print("served choices:", ", ".join(f"{k} {v}" for k, v in served))
    print("supporters' choices:", ", ".join(f"{k} {v}" for k, v in Counter(d.truth).most_common()))
    acc = {k: accuracy(v, d.truth) for k, v in picked.items()}
    print(
        f"strategy: served={acc['served']:.3f} rules={acc['rules']:.3f} learned={acc['learned']:.3f} "
        f"majority={acc['majority']:.3f} macro_f1={macro_f1(picked['served'], d.truth):.3f}"
    )
    return 0
