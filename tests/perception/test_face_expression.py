"""Our facial-expression model (Keras 3, torch backend) and the FacePerceiver, on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception.face.detect import load_face_detector
from perception.face.expression import GRID, default_face_model_paths, load_face_expression
from perception.face.image import ImageError, decode_image
from perception.face.perceiver import KerasFacePerceiver, face_signal
from perception.labels import LABELS
from tests.conftest import SHARED

FER = SHARED / "data" / "fer2013"
FACES = SHARED / "data" / "faces"


@pytest.fixture(scope="module")
def perceiver() -> KerasFacePerceiver:
    return KerasFacePerceiver(load_face_detector(), load_face_expression(default_face_model_paths()))


@pytest.fixture(scope="module")
def public_test():
    with np.load(FER / "fer2013_public_test.npz") as z:
        return z["images"], z["labels"]


def test_happy_faces_are_read_as_joy(perceiver, public_test):
    """The first 100 happy crops of the validation split (never trained on): most must come out joy."""
    images, labels = public_test
    happy = images[labels == LABELS.index("joy")][:100]
    probs, emb = perceiver.model.predict(happy)
    assert probs.shape == (100, 7) and emb.shape == (100, 256)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    share = float((probs.argmax(1) == LABELS.index("joy")).mean())
    print(f"happy crops read as joy: {share:.2f}")
    assert share >= 0.8


def test_validation_accuracy_well_above_chance(perceiver, public_test):
    images, labels = public_test
    probs, _ = perceiver.model.predict(images[::6])
    acc = float((probs.argmax(1) == labels[::6]).mean())
    print(f"accuracy on every 6th validation crop: {acc:.3f}")
    assert acc >= 0.6  # chance is 0.25 (the majority class)


def test_crop_mode_reads_the_whole_image(perceiver, public_test):
    images, _ = public_test
    readings = perceiver.read(images[0], crop=True)
    assert len(readings) == 1 and readings[0].box == (0, 0, 48, 48) and readings[0].score is None


@pytest.mark.parametrize("name,count", [("img1.jpg", 1), ("couple.jpg", 2), ("selfie-many-people.jpg", 4)])
def test_faces_found_in_photos(perceiver, name, count):
    readings = perceiver.read(decode_image((FACES / name).read_bytes()))
    assert len(readings) >= count
    areas = [r.box[2] * r.box[3] for r in readings]
    assert areas == sorted(areas, reverse=True)
    for r in readings:
        assert r.distribution.shape == (7,) and abs(float(r.distribution.sum()) - 1) < 1e-5


def test_blank_image_has_no_face(perceiver):
    assert perceiver.read(np.full((480, 640, 3), 200, np.uint8)) == []
    assert face_signal([], 1.0, "x") is None


def test_saliency_grid_points_at_the_face(perceiver, public_test):
    images, labels = public_test
    crop = images[labels == LABELS.index("joy")][0]
    label, grid = perceiver.model.saliency(crop)
    assert grid.shape == (GRID, GRID) and float(grid.max()) == pytest.approx(1.0) and float(grid.min()) >= 0
    # occluding the mouth/cheeks (lower half) should matter more than the top corners (hair, background)
    assert grid[3:, 1:5].mean() > grid[0, [0, -1]].mean()
    reading = perceiver.read(crop, crop=True, explain=True)[0]
    sig = face_signal([reading], 2.0, perceiver.name)
    assert sig is not None and sig.evidence["saliency"]["grid"] == np.round(reading.saliency, 3).tolist()


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def test_decode_refuses_bad_bytes_before_decoding():
    with pytest.raises(ImageError) as e:
        decode_image(b"hello, not an image")
    assert e.value.code == "unsupported_image"
    good = _jpeg(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ImageError) as e:
        decode_image(good[:40])  # header cut short
    assert e.value.code == "invalid_image"
    with pytest.raises(ImageError) as e:
        decode_image(good[:200] + b"\x00" * 50)  # header intact, data corrupt
    assert e.value.code == "invalid_image"
    # a PNG header claiming 100k x 100k pixels is refused from the header alone
    bomb = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (100_000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    with pytest.raises(ImageError) as e:
        decode_image(bomb)
    assert e.value.code == "image_too_large"
    assert decode_image(good).shape == (64, 64, 3)


def test_an_ensemble_averages_its_members_probabilities_and_keeps_the_first_ones_embedding(public_test, tmp_path):
    """Several weights files run as one model: probabilities are the members' mean, the embedding the first member's
    (the one fusion reads). The second member here is the shipped network with its `happy` bias raised by 2."""
    import keras

    from perception.face.model import FER_CLASSES, build_expression_net

    shipped = default_face_model_paths()[0]
    net = build_expression_net()
    net.load_weights(str(shipped))
    bias = net.get_layer("logits").bias
    bias.assign(keras.ops.convert_to_numpy(bias) + 2.0 * (np.arange(len(FER_CLASSES)) == FER_CLASSES.index("happy")))
    other = tmp_path / "member.weights.h5"
    net.save_weights(str(other))
    crops = public_test[0][:64]
    p1, e1 = load_face_expression(shipped).predict(crops)
    p2, e2 = load_face_expression(other).predict(crops)
    ensemble = load_face_expression([shipped, other])
    p, e = ensemble.predict(crops)
    assert ensemble.members == 2 and "2-member ensemble" in ensemble.name
    assert np.abs(p1 - p2).max() > 0.1  # the members really differ
    np.testing.assert_allclose(p, (p1 + p2) / 2, atol=1e-5)
    np.testing.assert_allclose(e, e1, atol=1e-5)
    with pytest.raises(ValueError, match="no face model weights"):
        load_face_expression([])
