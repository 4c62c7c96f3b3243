from __future__ import annotations

import pytest

from perception.text_lexicon import load_lexicon_text_perceiver


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon_text_perceiver()


def test_distribution_over_shared_labels(lexicon):
    s = lexicon.perceive("I am so happy and grateful today!")
    assert s.top == "joy" and abs(s.distribution.sum() - 1) < 1e-5 and s.modality == "text"


def test_neutral_when_nothing_fires(lexicon):
    s = lexicon.perceive("The meeting is at 3pm in room 4.")
    assert s.top == "neutral" and s.confidence <= 0.5


def test_negative_words(lexicon):
    s = lexicon.perceive("I feel terrible, hopeless and alone.")
    assert s.valence_arousal[0] < -0.2
