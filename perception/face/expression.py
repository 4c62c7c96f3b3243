"""Our facial-expression model served from Keras 3 (torch backend by default; TensorFlow when KERAS_BACKEND says so)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.environment import require_keras_backend
from perception.face.model import CROP, INPUT, build_expression_net, center_crop

GRID = 6  # saliency grid cells per side over the 48x48 crop


@dataclass(frozen=True)
class FaceExpressionModel:
    """48x48 grey crops → FER/shared-order probabilities and the 256-d embedding. The central CROP window (the whole
    crop for the shipped weights) and its mirror are both scored and averaged, as in validation. With several member
    networks (an ensemble of independently trained seeds) the probabilities are the mean over members; the embedding
    is the first member's, the one fusion learned to read."""

    model: Any  # keras.Model: crop -> (first member's embedding, each member's logits...)
    backend: str
    name: str
    members: int = 1

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops: [N, 48, 48] uint8 or float in [0, 1]. Returns (probs [N, 7], embedding [N, 256])."""
        import keras

        x = np.asarray(crops, dtype=np.float32)
        if x.max(initial=0.0) > 1.0:
            x = x / 255.0
        x = center_crop(x[..., None])
        both = np.concatenate([x, x[:, :, ::-1]])
        with self._no_grad():
            emb, *logits = self.model(both, training=False)
        emb = keras.ops.convert_to_numpy(emb)
        p = np.mean([_softmax(keras.ops.convert_to_numpy(z)) for z in logits], axis=0)
        n = len(x)
        return ((p[:n] + p[n:]) / 2).astype(np.float32), ((emb[:n] + emb[n:]) / 2).astype(np.float32)

    def _no_grad(self) -> Any:
        """On the torch backend, calling the model outside `predict` records autograd state: ~20% of a crop's time."""
        if self.backend != "torch":
            return contextlib.nullcontext()
        import torch

        return torch.inference_mode()

    def saliency(self, crop: np.ndarray, label: int | None = None) -> tuple[int, np.ndarray]:
        """Occlusion saliency: how much the probability of `label` (default: the top class) drops when each of
        GRIDxGRID cells is greyed out. Returns (label, [GRID, GRID] drops ≥ 0, max-normalised to 1)."""
        x = np.asarray(crop, dtype=np.float32)
        if x.max(initial=0.0) > 1.0:
            x = x / 255.0
        cell = INPUT // GRID
        batch = [x]
        for r in range(GRID):
            for c in range(GRID):
                occ = x.copy()
                occ[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = float(x.mean())
                batch.append(occ)
        probs, _ = self.predict(np.stack(batch))
        k = int(np.argmax(probs[0])) if label is None else label
        drop = np.clip(probs[0, k] - probs[1:, k], 0.0, None).reshape(GRID, GRID)
        top = float(drop.max())
        return k, (drop / top if top > 0 else drop).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def load_face_expression(
    paths: str | Path | Sequence[str | Path], width: int = 32, threads: int = 1
) -> FaceExpressionModel:
    """One weights file, or several (an ensemble; the first gives the embedding), run as one Keras model."""
    require_keras_backend()
    import keras

    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not files:
        raise ValueError("no face model weights given")
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    inp = keras.Input((CROP, CROP, 1), name="face")
    outputs = []
    for i, path in enumerate(files):
        net = build_expression_net(width=width)
        net.load_weights(str(path))
        member = keras.Model(net.input, [net.get_layer("embedding").output, net.output], name=f"member_{i}")
        emb, logits = member(inp)
        outputs += [emb, logits] if i == 0 else [logits]
    suffix = f", {len(files)}-member ensemble" if len(files) > 1 else ""
    model = FaceExpressionModel(
        keras.Model(inp, outputs),
        backend,
        f"persona-face-cnn-fer2013 (keras {keras.__version__}, {backend}{suffix})",
        len(files),
    )
    model.predict(np.zeros((1, INPUT, INPUT), np.float32))  # warm-up
    return model


# The shipped weights, in order: the first network gives the embedding fusion reads; any further file is another
# independently trained member whose probabilities are averaged in (perception/models/FACE_EXPRESSION.md).
FACE_MEMBERS: tuple[str, ...] = ("face_expression.weights.h5",)


def default_face_model_paths() -> tuple[Path, ...]:
    models = Path(__file__).resolve().parents[1] / "models"
    return tuple(models / name for name in FACE_MEMBERS)
