"""Trained text emotion model: MiniLM-L6 fine-tuned on GoEmotions (28 labels), served as int8 ONNX.

Reports the 28 GoEmotions probabilities (in `evidence`), the labels over their tuned thresholds, and the 7-label
shared distribution derived from them (DESIGN.md §2).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.labels import LABELS
from perception.types import ModalitySignal

MAX_LEN = 64  # tokens; GoEmotions comments are short, longer messages are truncated
GOEMOTIONS: tuple[str, ...] = (
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
)
# GoEmotions' own ekman_mapping.json (Demszky et al. 2020); neutral stays neutral.
EKMAN_MAPPING: Mapping[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
_GROUP = np.array([LABELS.index(next(k for k, v in EKMAN_MAPPING.items() if g in v)) for g in GOEMOTIONS])  # [28]


def to_shared(probs: np.ndarray) -> np.ndarray:
    """[N, 28] label probabilities → [N, 7] shared scores: the max over each group's members."""
    out = np.zeros((probs.shape[0], len(LABELS)), dtype=np.float32)
    for k in range(len(LABELS)):
        out[:, k] = probs[:, _GROUP == k].max(axis=1)
    return out


def text_quality(text: str) -> dict[str, float]:
    """How much there is to read: word count, and the share of letters among non-space characters (garbled or
    mistranscribed text has fewer)."""
    chars = [c for c in text if not c.isspace()]
    return {"words": len(text.split()), "letters": round(sum(c.isalpha() for c in chars) / max(1, len(chars)), 4)}


def to_distribution(shared: np.ndarray) -> np.ndarray:
    """[N, 7] scores → [N, 7] probability distribution."""
    s = np.clip(shared, 1e-6, None)
    return s / s.sum(axis=1, keepdims=True)


def pad_token_ids(seqs: Sequence[Sequence[int]], pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists with `pad` → ([N, T] ids, [N, T] attention mask), int64 as the encoders expect."""
    t = max(1, max((len(x) for x in seqs), default=1))
    ids = np.full((len(seqs), t), pad, dtype=np.int64)
    mask = np.zeros((len(seqs), t), dtype=np.int64)
    for i, x in enumerate(seqs):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return ids, mask


def tune_thresholds(probs: np.ndarray, y: np.ndarray, grid: Sequence[float] | None = None) -> np.ndarray:
    """Per-label threshold maximising that label's F1 on (probs [N, L], y [N, L])."""
    grid_ = np.arange(0.02, 0.96, 0.01) if grid is None else np.asarray(grid)
    out = np.full(probs.shape[1], 0.5, dtype=np.float32)
    for j in range(probs.shape[1]):
        best = -1.0
        for t in grid_:
            pred = probs[:, j] >= t
            tp = float((pred & (y[:, j] == 1)).sum())
            f1 = 2 * tp / max(1.0, float(pred.sum() + y[:, j].sum()))
            if f1 > best:
                best, out[j] = f1, t
    return out


@dataclass(frozen=True, slots=True)
class Attribution:
    token: str
    weight: float  # drop in the explained label's probability when this word is removed


@dataclass(frozen=True)
class TextEmotionModel:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    thresholds: np.ndarray  # [28]
    name: str = "minilm-l6-goemotions-int8"

    def forward(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One padded batch → ([N, 28] label probabilities, [N, 384] sentence embeddings)."""
        ids, mask = pad_token_ids([e.ids for e in self.tokenizer.encode_batch(list(texts))])
        logits, pooled = self.session.run(["logits", "pooled"], {"input_ids": ids, "attention_mask": mask})
        return 1.0 / (1.0 + np.exp(-logits)), pooled  # [N, 28], [N, 384]

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """[N, 28] probabilities, in batches sorted by length (less padding)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), len(GOEMOTIONS)), dtype=np.float32)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            out[idx] = self.forward([texts[i] for i in idx])[0]
        return out

    def perceive_batch(self, texts: Sequence[str]) -> list[ModalitySignal]:
        t0 = time.perf_counter()
        probs, pooled = self.forward(texts)
        return self.signals(texts, probs, pooled, (time.perf_counter() - t0) * 1000)

    def signals(
        self, texts: Sequence[str], probs: np.ndarray, pooled: np.ndarray, batch_ms: float
    ) -> list[ModalitySignal]:
        """One forward pass's outputs ([N, 28] probabilities, [N, 384] embeddings) → the N text signals."""
        dist = to_distribution(to_shared(probs))
        ms = batch_ms / max(1, len(texts))
        out = []
        for i in range(len(texts)):
            predicted = [GOEMOTIONS[j] for j in np.flatnonzero(probs[i] >= self.thresholds)]
            # confidence: 1 - normalised entropy of the shared distribution
            h = -float((dist[i] * np.log(dist[i])).sum()) / np.log(len(LABELS))
            out.append(
                ModalitySignal(
                    modality="text",
                    distribution=dist[i].astype(np.float32),
                    embedding=pooled[i].astype(np.float32),
                    confidence=float(np.clip(1.0 - h, 0.0, 1.0)),
                    latency_ms=ms,
                    model=self.name,
                    evidence={
                        "labels": {g: round(float(p), 4) for g, p in zip(GOEMOTIONS, probs[i])},
                        "predicted": predicted or [GOEMOTIONS[int(np.argmax(probs[i]))]],
                        "quality": text_quality(texts[i]),
                    },
                )
            )
        return out

    def perceive(self, text: str) -> ModalitySignal:
        return self.perceive_batch([text])[0]

    def explain(self, text: str, label: str | None = None, max_words: int = 64) -> tuple[str, list[Attribution]]:
        """Occlusion: remove each word in turn; its weight is how much the explained label's probability drops.
        Explains `label` (a GoEmotions or shared label) or else the top GoEmotions label."""
        words = text.split()[:max_words]
        variants = [text] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
        probs = self.forward(variants)[0]  # [1 + W, 28]
        if label is None:
            label = GOEMOTIONS[int(np.argmax(probs[0]))]
        if label in GOEMOTIONS:
            score = probs[:, GOEMOTIONS.index(label)]
        else:
            assert label in LABELS, f"unknown label {label!r}"
            score = to_shared(probs)[:, LABELS.index(label)]
        return label, [Attribution(w, round(float(score[0] - score[i + 1]), 4)) for i, w in enumerate(words)]


def load_text_model(path: str | Path | None = None, threads: int = 1) -> TextEmotionModel:
    """Load the artifact (model.int8.onnx, tokenizer.json, thresholds.json) from a local folder: the shipped one
    (perception/models/text_emotion) unless `path` says otherwise."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    path = Path(path) if path is not None else default_text_model_dir()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path / "model.int8.onnx"), opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.enable_truncation(MAX_LEN)
    tok.no_padding()
    meta = json.loads((path / "thresholds.json").read_text())
    assert tuple(meta["labels"]) == GOEMOTIONS, "thresholds.json labels differ from the model's"
    return TextEmotionModel(session=session, tokenizer=tok, thresholds=np.asarray(meta["thresholds"], dtype=np.float32))


def default_text_model_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / "text_emotion"
