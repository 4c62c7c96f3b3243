"""Our facial-expression model served from Keras 3 (torch backend by default; TensorFlow when KERAS_BACKEND says so)."""
from __future__ import annotations

import contextlib
from typing import Any
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.environment import require_keras_backend
from perception.face.model import INPUT, build_expression_net, center_crop

GRID = 6  # saliency grid cells per side over the 48x48 crop


@dataclass(frozen=True)
class FaceExpressionModel:
    """48x48 grey crops → FER/shared-order probabilities and the 256-d embedding. The central CROP window (the whole
    crop for the shipped weights) and its mirror are both scored and averaged, as in validation."""

    model: Any  # keras.Model: crop -> (embedding, logits)
    backend: str
    name: str

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crops: [N, 48, 48] uint8 or float in [0, 1]. Returns (probs [N, 7], embedding [N, 256])."""
        import keras

        x = np.asarray(crops, dtype=np.float32)
        if x.max(initial=0.0) > 1.0:
            x = x / 255.0
        x = center_crop(x[..., None])
        both = np.concatenate([x, x[:, :, ::-1]])
        with self._no_grad():
            emb, logits = self.model(both, training=False)
        logits = keras.ops.convert_to_numpy(logits)
        emb = keras.ops.convert_to_numpy(emb)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
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
                occ[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = float(x.mean())
                batch.append(occ)
        probs, _ = self.predict(np.stack(batch))
        k = int(np.argmax(probs[0])) if label is None else label
        drop = np.clip(probs[0, k] - probs[1:, k], 0.0, None).reshape(GRID, GRID)
        top = float(drop.max())
        return k, (drop / top if top > 0 else drop).astype(np.float32)


def load_face_expression(path: str | Path, width: int = 32, threads: int = 1) -> FaceExpressionModel:
    require_keras_backend()
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    net = build_expression_net(width=width)
    net.load_weights(str(path))
    both = keras.Model(net.input, [net.get_layer("embedding").output, net.output])
    model = FaceExpressionModel(both, backend, f"persona-face-cnn-fer2013 (keras {keras.__version__}, {backend})")
    model.predict(np.zeros((1, INPUT, INPUT), np.float32))  # warm-up
    return model


def default_face_model_path() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "face_expression.weights.h5"
