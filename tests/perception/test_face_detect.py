"""Face detection (OpenCV Haar cascade shipped in opencv-python-headless) on the real photos in shared/data/faces."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception.face.detect import load_face_detector
from tests.conftest import SHARED

FACES = SHARED / "data" / "faces"


@pytest.fixture(scope="module")
def detector():
    return load_face_detector()


def gray(name: str) -> np.ndarray:
    img = cv2.imread(str(FACES / name), cv2.IMREAD_GRAYSCALE)
    assert img is not None, name
    return img


@pytest.mark.parametrize("name", ["img1.jpg", "img2.jpg", "img4.jpg", "img5.jpg", "img6.jpg", "img10.jpg"])
def test_single_portraits_have_one_face(detector, name):
    boxes = detector.detect(gray(name))
    assert len(boxes) == 1, boxes
    b = boxes[0]
    h, w = gray(name).shape
    assert 0 <= b.x and 0 <= b.y and b.x + b.w <= w and b.y + b.h <= h and b.w > 0.1 * min(h, w)


def test_group_selfie_has_several_faces(detector):
    assert len(detector.detect(gray("selfie-many-people.jpg"))) >= 4


def test_couple_has_two_faces(detector):
    assert len(detector.detect(gray("couple.jpg"))) == 2


def test_blank_and_noise_images_have_none(detector):
    assert detector.detect(np.full((480, 640), 128, dtype=np.uint8)) == []
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 256, (480, 640), dtype=np.uint8)) == []
