"""Command-line arguments of the adapter trainer and the replies eval (kept free of heavy imports)."""

from __future__ import annotations

import argparse
from pathlib import Path

from perception.environment import DEFAULT_CACHE_DIR

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def add_adapter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", help="HF folder of the chat model (default: the embedded SmolLM2-135M-Instruct folder)")
    p.add_argument(
        "--dialogues",
        nargs="+",
        default=[str(SHARED / "esconv" / "train.jsonl")],
        help="ESConv-format JSONL files (your own dialogues work too)",
    )
    p.add_argument("--workdir", default=".cache/train-adapter")
    p.add_argument("--out", default=str(ROOT / "prompts" / "adapters" / "persona"))
    p.add_argument("--max-examples", type=int, default=1400, help="training sequences per epoch")
    p.add_argument(
        "--pair-share",
        type=float,
        default=0.5,
        help="share of the sequences that are contrastive pairs (one signal low and high, same context)",
    )
    p.add_argument("--held-examples", type=int, default=60, help="held-out sequences that pick the checkpoint")
    p.add_argument("--held-pairs", type=int, default=24, help="held-out contrastive pairs that pick the checkpoint")
    p.add_argument(
        "--pair-signals",
        nargs="+",
        default=["verbosity", "formality", "empathy", "strategy"],
        choices=("verbosity", "formality", "empathy", "strategy"),
        help="the signals the pairs cycle through; repeat one to give it more pairs",
    )
    p.add_argument(
        "--strategy-empathic",
        type=float,
        default=0.0,
        help="share of the strategy pairs (where the seeker voiced a feeling) set at high empathy, both "
        "targets after the same acknowledgement, as served replies to such a message run (tried at "
        "0.75 in session 17, no better than 0: see the adapter's model card)",
    )
    p.add_argument("--pair-history", type=int, default=2, help="messages of context before the seeker's in a pair")
    p.add_argument(
        "--contrast-weight",
        type=float,
        default=1.0,
        help="weight of the contrastive term on pairs (0: likelihood of the targets only)",
    )
    p.add_argument("--contrast-beta", type=float, default=0.5, help="scale of the pair margin (nats) in the sigmoid")
    p.add_argument("--max-len", type=int, default=448, help="longest sequence in tokens (longer ones are skipped)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--layers", type=int, default=18, help="adapt only the top N decoder layers (0: all)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--accumulate", type=int, default=8, help="sequences per optimizer step")
    p.add_argument("--checkpoint-steps", type=int, default=25)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="train nothing: write the best checkpoint so far in --workdir to --out (a run cut short)",
    )
    p.add_argument(
        "--tool-examples",
        type=int,
        default=0,
        help="synthetic tool-use turns added to the training units (tuning/tool_examples.py; an eighth as many from "
        "the held-out families join the held-out set)",
    )
    p.add_argument("--init", help="start from this peft adapter folder (a second training stage) instead of a new one")
    p.add_argument(
        "--controls-at",
        choices=("system", "end"),
        default="end",
        help="where the prompt puts the controls' guidance (prompts.render ControlsAt); recorded in "
        "training.json, and the server renders the same for this adapter",
    )


def add_strategy_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dialogues", required=True, help="ESConv-format JSONL (e.g. ../shared/data/esconv/valid.jsonl)")
    p.add_argument("--profile", default="wellbeing_coach", help="the agent profile whose policy is evaluated")
    p.add_argument("--chooser", type=Path, default=None, help="the chooser's weights (default: the shipped ones)")
    p.add_argument("--policy", type=Path, default=None, help="a rules file (default: the shipped persona/rules.yaml)")
    p.add_argument("--threads", type=int, default=2)


def add_replies_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dialogues", required=True, help="ESConv-format JSONL (e.g. shared/data/esconv/valid.jsonl)")
    p.add_argument("--n", type=int, default=200, help="supporter turns scored against the gold reply")
    p.add_argument("--situations", type=int, default=30, help="situations per signal for controllability")
    p.add_argument("--strategy-situations", type=int, default=12, help="situations per forced strategy")
    p.add_argument("--adapter-mode", choices=("merged", "lora"), default="merged")
    p.add_argument("--adapter", help="peft adapter folder (default: the shipped prompts/adapters/persona)")
    p.add_argument("--profile", default="wellbeing_coach", help="profile of the seeded sessions")
    p.add_argument(
        "--strategy-train",
        default=str(SHARED / "esconv" / "train.jsonl"),
        help="ESConv-format dialogues the reply-strategy classifier is trained on (default: the shipped ESConv train)",
    )
    p.add_argument("--max-tokens", type=int, default=120, help="the same token cap for every reply")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--speed-n", type=int, default=20, help="prompts for the engine's first-token and decode rate")
    p.add_argument("--workdir", default="bench/out/eval-replies")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    p.add_argument("--seed", type=int, default=5)


def add_tools_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--adapter",
        nargs="+",
        default=["shipped"],
        help="peft adapter folders to compare with the base model ('shipped': prompts/adapters/persona)",
    )
    p.add_argument("--n", type=int, default=40, help="continued turns, drawn from the held-out tool families")
    p.add_argument("--seen", action="store_true", help="draw from the training families instead")
    p.add_argument("--base", help="HF folder of the chat model (default: the embedded SmolLM2-135M-Instruct folder)")
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--threads", type=int, default=2)
