"""FacePerceiver: an image in, every face's box and expression out; the largest face becomes the turn's signal.

Two implementations behind one interface: ours (Haar detector + our Keras CNN) and deepface's own `DeepFace.analyze`
running offline on weights we trained for its architecture (`persona-agent train deepface`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from perception.face.detect import FaceDetector, to_gray
from perception.face.expression import FaceExpressionModel
from perception.face.model import FER_CLASSES, INPUT
from perception.labels import LABELS
from perception.types import ModalitySignal

assert (
    tuple(k.replace("angry", "anger").replace("happy", "joy").replace("sad", "sadness") for k in FER_CLASSES) == LABELS
)


@dataclass(frozen=True, slots=True)
class FaceReading:
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels
    score: float | None  # detection confidence in [0, 1] (None when the image was given as a face crop)
    distribution: np.ndarray  # [7] over LABELS
    embedding: np.ndarray | None  # [256] for our model; None for deepface
    saliency: np.ndarray | None = None  # [6, 6] occlusion saliency of the top class, when asked
    quality: dict[str, float] | None = None  # of the 48x48 crop: sharpness, contrast, brightness

    def emotions(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in zip(LABELS, self.distribution)}


class FacePerceiver(Protocol):
    @property
    def name(self) -> str: ...

    def read(self, image: np.ndarray, *, crop: bool = False, explain: bool = False) -> list[FaceReading]:
        """image: [H, W, 3] uint8 BGR (or [H, W] grey). crop=True: the whole image is one face crop, as in
        FER-2013. Faces largest first."""
        ...


def face_crop(gray: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.0) -> np.ndarray:
    """The box (grown by `margin` of its side, clipped to the image) resized to 48x48 uint8."""
    import cv2

    x, y, w, h = box
    dx, dy = int(w * margin), int(h * margin)
    H, W = gray.shape
    x0, y0, x1, y1 = max(0, x - dx), max(0, y - dy), min(W, x + w + dx), min(H, y + h + dy)
    return cv2.resize(gray[y0:y1, x0:x1], (INPUT, INPUT), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class KerasFacePerceiver:
    detector: FaceDetector
    model: FaceExpressionModel
    max_faces: int = 8

    @property
    def name(self) -> str:
        return self.model.name

    def read(self, image: np.ndarray, *, crop: bool = False, explain: bool = False) -> list[FaceReading]:
        gray = to_gray(image)
        if crop:
            boxes: list[tuple[tuple[int, int, int, int], float | None]] = [((0, 0, gray.shape[1], gray.shape[0]), None)]
        else:
            boxes = [((b.x, b.y, b.w, b.h), b.score) for b in self.detector.detect(image)[: self.max_faces]]
        if not boxes:
            return []
        crops = np.stack([face_crop(gray, box) for box, _ in boxes])
        probs, emb = self.model.predict(crops)
        out = []
        for i, (box, score) in enumerate(boxes):
            sal = self.model.saliency(crops[i])[1] if explain else None
            out.append(FaceReading(box, score, probs[i], emb[i], sal, crop_quality(crops[i])))
        return out


def load_keras_face_perceiver(
    weights: str | Path | Sequence[str | Path], threads: int = 1, detector: Literal["blazeface", "haar"] = "blazeface"
) -> KerasFacePerceiver:
    """Ours: BlazeFace (or Haar) detection and the Keras expression CNN from `weights` (an .h5 file, or several for
    an ensemble)."""
    from perception.face.detect import load_face_detector
    from perception.face.expression import load_face_expression

    return KerasFacePerceiver(
        load_face_detector(detector, threads=threads), load_face_expression(weights, threads=threads)
    )


def crop_quality(crop: np.ndarray) -> dict[str, float]:
    """Blur (log variance of the Laplacian), contrast and brightness of a 48x48 uint8 crop."""
    import cv2

    lap = cv2.Laplacian(crop.astype(np.float32), cv2.CV_32F)
    return {
        "sharpness": round(float(np.log1p(lap.var())), 4),
        "contrast": round(float(crop.std()) / 255, 4),
        "brightness": round(float(crop.mean()) / 255, 4),
    }


@dataclass(frozen=True)
class DeepfaceFacePerceiver:
    """`DeepFace.analyze(actions=["emotion"])` with its PyTorch engine, fully offline: the weights are ours, trained
    for deepface's own EmotionModel, placed where deepface looks ($DEEPFACE_HOME/.deepface/weights/)."""

    detector_backend: str = "opencv"
    name: str = "deepface-emotion (PyTorch, trained on FER-2013 by persona-agent)"

    def read(self, image: np.ndarray, *, crop: bool = False, explain: bool = False) -> list[FaceReading]:
        from deepface import DeepFace

        img = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        found = DeepFace.analyze(
            img,
            actions=["emotion"],
            detector_backend="skip" if crop else self.detector_backend,
            enforce_detection=False,
            silent=True,
        )
        out = []
        for f in found:
            r = f["region"]
            if not crop and not f.get("face_confidence"):  # deepface's stand-in for "no face": the whole image
                continue
            dist = np.array([f["emotion"][k] for k in FER_CLASSES], np.float32)
            out.append(
                FaceReading(
                    (int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])),
                    None if crop else float(f["face_confidence"]),
                    dist / max(dist.sum(), 1e-9),
                    None,
                )
            )
        return sorted(out, key=lambda f: -f.box[2] * f.box[3])


def default_deepface_weights() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "deepface" / "facial_expression_model_weights.pth"


def load_deepface_perceiver(weights: Path, home: Path) -> DeepfaceFacePerceiver:
    """Point deepface at `home` (its config is environment variables, read when it runs) and link our weights in."""
    target = home / ".deepface" / "weights" / "facial_expression_model_weights.pth"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.resolve() != weights.resolve():
        target.unlink(missing_ok=True)
        target.symlink_to(weights.resolve())
    os.environ["DEEPFACE_HOME"] = str(home)
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
    perceiver = DeepfaceFacePerceiver()
    perceiver.read(np.zeros((INPUT, INPUT, 3), np.uint8), crop=True)  # load + warm up now, not on the first frame
    return perceiver


def face_signal(readings: list[FaceReading], latency_ms: float, model: str) -> ModalitySignal | None:
    """The largest face as this turn's face signal; confidence falls with a flat distribution and a weak detection."""
    if not readings:
        return None
    f = readings[0]
    p = np.clip(f.distribution, 1e-9, 1.0)
    h = -float((p * np.log(p)).sum()) / np.log(len(LABELS))
    det = 1.0 if f.score is None else float(np.clip(f.score, 0.25, 1.0))
    emb = f.embedding if f.embedding is not None else f.distribution
    evidence: dict[str, object] = {
        "box": list(f.box),
        "faces": len(readings),
        "detector_score": None if f.score is None else round(f.score, 3),
    }
    if f.quality is not None:
        evidence["quality"] = f.quality
    if f.saliency is not None:
        evidence["saliency"] = {
            "grid": np.round(f.saliency, 3).tolist(),
            "method": "occlusion",
            "label": LABELS[int(np.argmax(f.distribution))],
        }
    return ModalitySignal(
        modality="face",
        distribution=f.distribution.astype(np.float32),
        embedding=emb,
        confidence=float(np.clip((1.0 - h) * det, 0.0, 1.0)),
        latency_ms=latency_ms,
        model=model,
        evidence=evidence,
    )


def perceive_image(
    perceiver: FacePerceiver, image: np.ndarray, explain: bool = False
) -> tuple[list[FaceReading], ModalitySignal | None]:
    t0 = time.perf_counter()
    readings = perceiver.read(image, explain=explain)
    return readings, face_signal(readings, (time.perf_counter() - t0) * 1000, perceiver.name)
