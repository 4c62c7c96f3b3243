"""Face detection on the real photos in shared/data/faces: BlazeFace (the default) and OpenCV's Haar cascade."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception.face.detect import load_face_detector
from tests.conftest import SHARED

FACES = SHARED / "data" / "faces"


@pytest.fixture(scope="module", params=["blazeface", "haar"])
def detector(request):
    return load_face_detector(request.param)


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
    assert 0 < b.score <= 1
    color = detector.detect(cv2.imread(str(FACES / name)))  # BGR works as well as grey
    assert len(color) == 1 and abs(color[0].x - b.x) < 0.1 * b.w


def test_both_detectors_frame_a_face_alike():
    """BlazeFace's boxes are reshaped to the square, forehead-inclusive framing the expression model was trained on
    (Haar's): the two detectors' boxes overlap closely."""
    blaze, haar = load_face_detector("blazeface"), load_face_detector("haar")
    for name in ["img1.jpg", "img2.jpg", "img4.jpg", "img5.jpg", "img6.jpg", "img10.jpg"]:
        a, b = blaze.detect(gray(name))[0], haar.detect(gray(name))[0]
        x0, y0 = max(a.x, b.x), max(a.y, b.y)
        inter = max(0, min(a.x + a.w, b.x + b.w) - x0) * max(0, min(a.y + a.h, b.y + b.h) - y0)
        assert inter / (a.w * a.h + b.w * b.h - inter) > 0.7, name


def test_group_selfie_has_several_faces(detector):
    assert len(detector.detect(gray("selfie-many-people.jpg"))) >= 4


def test_couple_has_two_faces(detector):
    assert len(detector.detect(gray("couple.jpg"))) == 2


def test_blank_and_noise_images_have_none(detector):
    assert detector.detect(np.full((480, 640), 128, dtype=np.uint8)) == []
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 256, (480, 640), dtype=np.uint8)) == []
