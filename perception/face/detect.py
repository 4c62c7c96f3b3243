"""Face detection with OpenCV's Haar cascade (its model file ships inside `opencv-python-headless` < 5)."""
from __future__ import annotations

from typing import Any
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    score: float  # the cascade's last-stage weight: higher = more face-like (not a probability)


@dataclass(frozen=True)
class HaarFaceDetector:
    cascade: Any  # cv2.CascadeClassifier
    min_size_frac: float = 0.06  # smallest face, as a fraction of the shorter image side
    min_score: float = 2.0  # weaker detections are mostly false positives on our test photos
    max_side: int = 640  # images are downscaled to this for detection

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        """gray: [H, W] uint8. Boxes in the input image's pixel coordinates, largest first."""
        import cv2

        h, w = gray.shape
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(gray, (int(w * scale), int(h * scale))) if scale < 1 else gray
        small = cv2.equalizeHist(small)
        min_side = max(24, int(min(small.shape) * self.min_size_frac))
        boxes, _, weights = self.cascade.detectMultiScale3(
            small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True)
        out = [FaceBox(int(x / scale), int(y / scale), int(bw / scale), int(bh / scale), float(s))
               for (x, y, bw, bh), s in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1))]
        return sorted((b for b in out if b.score >= self.min_score), key=lambda b: -b.w * b.h)


def load_face_detector() -> HaarFaceDetector:
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    assert not cascade.empty(), f"cannot load Haar cascade from {path}"
    return HaarFaceDetector(cascade)
