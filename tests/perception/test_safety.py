"""Safety layer: explicit-phrase rules with idioms left alone, and the shipped learned classifier."""
from __future__ import annotations

import numpy as np
import pytest

from agent import assess_texts, load_risk_model, load_text_model
from perception.safety import explicit_phrase


@pytest.mark.parametrize("text", [
    "I want to kill myself",
    "i'm going to end my life tonight",
    "I've been thinking about suicide a lot",
    "honestly I'd be better off dead",
    "I can't go on like this anymore",
    "I just want it all to end",
])
def test_explicit_phrases(text):
    assert explicit_phrase(text)


@pytest.mark.parametrize("text", [
    "this exam is killing me",
    "I could die of embarrassment",
    "my feet are killing me lol",
    "I would kill for a pizza right now",
    "I'm dying to see the new movie",
    "you killed it at the gig last night!",
    "The meeting is moved to Thursday.",
])
def test_idioms_are_not_explicit(text):
    assert explicit_phrase(text) is None


@pytest.fixture(scope="module")
def models():
    return load_text_model(None, threads=1), load_risk_model()


def test_idioms_not_flagged_by_the_full_layer(models):
    text_model, risk = models
    idioms = ["this exam is killing me", "I could die of embarrassment", "I'm dying to try that new ramen place",
              "I would kill for a pizza right now", "you killed it at the gig last night!"]
    results = assess_texts(text_model, risk, idioms)
    assert [r.level for r in results] == ["none"] * len(idioms), [(t, r.score) for t, r in zip(idioms, results)]


def test_risk_flagged_without_explicit_words(models):
    text_model, risk = models
    r = assess_texts(text_model, risk, ["I have been giving away my things and writing letters to my family. "
                                        "Soon none of this will matter, they will be better without me."])[0]
    assert r.rule is None and r.level in ("caution", "crisis"), r.score


def test_scores_are_probabilities(models):
    text_model, risk = models
    scores = np.array([r.score for r in assess_texts(text_model, risk, ["hello", "I want to die", "nice weather"])])
    assert ((scores >= 0) & (scores <= 1)).all() and scores[1] > scores[0]
