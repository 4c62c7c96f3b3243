"""deepface as an optional backend, fully offline: DeepFace.analyze runs its own pipeline (its OpenCV detector, its
PyTorch EmotionModel) on weights we trained, through our FacePerceiver interface; nothing is downloaded."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from perception.face.image import decode_image
from perception.face.perceiver import default_deepface_weights, load_deepface_perceiver
from tests.conftest import SHARED

FACES = SHARED / "data" / "faces"


@pytest.fixture(scope="module")
def deepface_perceiver(tmp_path_factory):
    home = tmp_path_factory.mktemp("deepface-home")
    real_connect = socket.socket.connect

    def no_network(self, address):  # any download attempt would fail loudly here, not silently succeed
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    socket.socket.connect = no_network
    try:
        yield load_deepface_perceiver(default_deepface_weights(), home)
    finally:
        socket.socket.connect = real_connect


def test_deepface_reads_faces_offline(deepface_perceiver):
    img = decode_image((FACES / "img1.jpg").read_bytes())
    faces = deepface_perceiver.read(img)
    assert len(faces) >= 1
    f = faces[0]
    assert f.distribution.shape == (7,) and abs(float(f.distribution.sum()) - 1) < 1e-4
    x, y, w, h = f.box
    assert w > 0.1 * img.shape[1] and 0 <= x and x + w <= img.shape[1]


def test_deepface_crop_mode_and_blank_image(deepface_perceiver):
    with np.load(SHARED / "data" / "fer2013" / "fer2013_public_test.npz") as z:
        happy = z["images"][z["labels"] == 3][:40]
    tops = [int(np.argmax(deepface_perceiver.read(im, crop=True)[0].distribution)) for im in happy]
    assert np.mean(np.array(tops) == 3) >= 0.6  # FER 'happy' = shared 'joy'
    assert deepface_perceiver.read(np.full((480, 640, 3), 128, np.uint8)) == []
