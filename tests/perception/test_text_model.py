"""The shipped text emotion artifact, loaded offline from the repository."""

from __future__ import annotations

import numpy as np
import pytest

from perception import LABELS
from perception.text_model import GOEMOTIONS, default_text_model_dir, load_text_model, to_distribution, to_shared


@pytest.fixture(scope="module")
def model():
    return load_text_model(default_text_model_dir(), threads=1)


def top(model, text: str) -> str:
    probs = model.predict([text])[0]
    return GOEMOTIONS[int(np.argmax(probs))]


def test_loads_offline_from_the_repository(model, monkeypatch):
    assert (default_text_model_dir() / "model.int8.onnx").stat().st_size < 40 * 1024 * 1024
    assert model.thresholds.shape == (28,) and ((model.thresholds > 0) & (model.thresholds < 1)).all()


@pytest.mark.parametrize(
    "text, label",
    [
        ("thank you so much!", "gratitude"),
        ("I'm furious", "anger"),
        ("I'm so scared of what the test results will say", "fear"),
        ("This is hilarious, I can't stop laughing", "amusement"),
    ],
)
def test_obvious_cases(model, text, label):
    assert top(model, text) == label


@pytest.mark.parametrize(
    "text, shared",
    [
        ("thank you so much!", "joy"),
        ("I'm furious", "anger"),
        ("My grandmother passed away last night and I miss her.", "sadness"),
        ("The meeting is moved to room 4.", "neutral"),
    ],
)
def test_shared_distribution(model, text, shared):
    s = model.perceive(text)
    assert s.top == shared and abs(float(s.distribution.sum()) - 1) < 1e-5
    assert s.embedding.shape == (384,) and 0 <= s.confidence <= 1
    assert set(s.evidence["labels"]) == set(GOEMOTIONS) and s.evidence["predicted"]


def test_batch_agrees_with_single(model):
    """Dynamic int8 quantises activations with one scale per batch, so batching moves probabilities slightly
    (measured: up to ~0.04); the reading must not change."""
    texts = ["thank you so much!", "I'm furious", "ok", "a considerably longer message about nothing in particular"]
    batch = model.perceive_batch(texts)
    for t, b in zip(texts, batch):
        single = model.perceive(t)
        assert single.top == b.top and np.abs(single.distribution - b.distribution).max() < 0.06


def test_occlusion_points_at_the_emotion_word(model):
    label, attrs = model.explain("well thank you so much for the flowers")
    assert label == "gratitude"
    assert max(attrs, key=lambda a: a.weight).token in ("thank", "thanks")


def test_group_max_mapping():
    probs = np.zeros((1, 28), dtype=np.float32)
    probs[0, GOEMOTIONS.index("gratitude")] = 0.9
    probs[0, GOEMOTIONS.index("annoyance")] = 0.3
    shared = to_shared(probs)
    assert shared[0, LABELS.index("joy")] == pytest.approx(0.9) and shared[0, LABELS.index("anger")] == pytest.approx(
        0.3
    )
    assert to_distribution(shared)[0].sum() == pytest.approx(1.0)
