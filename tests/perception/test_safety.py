"""Safety layer: explicit-phrase rules with idioms left alone, and the shipped learned classifier."""

from __future__ import annotations

import numpy as np
import pytest

from agent.analysis import assess_texts, load_risk_model, load_warning_signs
from perception.safety import explicit_phrase, load_risk_features, warning_sign


@pytest.mark.parametrize(
    "text",
    [
        "I want to kill myself",
        "i'm going to end my life tonight",
        "I've been thinking about suicide a lot",
        "honestly I'd be better off dead",
        "I can't go on like this anymore",
        "I just want it all to end",
        "I don't see the point in living",
        "what's the point of living",
    ],
)
def test_explicit_phrases(text):
    assert explicit_phrase(text)


@pytest.mark.parametrize(
    "text",
    [
        "this exam is killing me",
        "I could die of embarrassment",
        "my feet are killing me lol",
        "I would kill for a pizza right now",
        "I'm dying to see the new movie",
        "you killed it at the gig last night!",
        "The meeting is moved to Thursday.",
    ],
)
def test_idioms_are_not_explicit(text):
    assert explicit_phrase(text) is None


@pytest.mark.parametrize(
    "text, sign",
    [
        ("honestly I don't see the point of anything anymore", True),
        ("I feel hopeless", True),
        ("I am completely hopeless.", True),
        ("what's the point anymore", True),
        ("nothing matters anymore", True),
        ("I'm hopeless at cooking", False),
        ("I'm hopeless with names", False),
        ("this team is hopeless", False),
        ("what's the point of this meeting?", False),
    ],
)
def test_hopelessness_is_a_warning_sign_not_a_crisis(text, sign):
    assert (warning_sign(text) is not None) is sign and explicit_phrase(text) is None


@pytest.fixture(scope="module")
def models():
    return load_risk_features(), load_risk_model()


def test_idioms_not_flagged_by_the_full_layer(models):
    text_model, risk = models
    idioms = [
        "this exam is killing me",
        "I could die of embarrassment",
        "I'm dying to try that new ramen place",
        "I would kill for a pizza right now",
        "you killed it at the gig last night!",
    ]
    results = assess_texts(text_model, risk, idioms, load_warning_signs())
    assert [r.level for r in results] == ["none"] * len(idioms), [(t, r.score) for t, r in zip(idioms, results)]


def test_risk_flagged_without_explicit_words(models):
    text_model, risk = models
    text = (
        "I have been giving away my things and writing letters to my family. "
        "Soon none of this will matter, they will be better without me."
    )
    r = assess_texts(text_model, risk, [text])[0]
    assert explicit_phrase(text) is None and r.level in ("caution", "crisis")
    assert r.score >= risk.caution_threshold  # the learned score alone, not only the warning-sign rules


def test_scores_are_probabilities(models):
    text_model, risk = models
    scores = np.array([r.score for r in assess_texts(text_model, risk, ["hello", "I want to die", "nice weather"])])
    assert ((scores >= 0) & (scores <= 1)).all() and scores[1] > scores[0]


def test_lexical_score_matches_scikit_learn():
    """The served TF-IDF model (recomputed from the stored vocabulary, idf and weights) gives scikit-learn's
    probabilities: fit the pipeline on the crisis set, export it the way `train safety` does, compare."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from perception.safety import LexicalRisk, lexical_terms
    from tests.conftest import SHARED
    from training.safety import read_crisis

    data = read_crisis(SHARED / "data" / "crisis")
    vec = TfidfVectorizer(analyzer=lexical_terms, sublinear_tf=True, min_df=2)
    clf = LogisticRegression(C=16.0, max_iter=5000, class_weight="balanced").fit(vec.fit_transform(data.texts), data.y)
    ours = LexicalRisk(
        {t: i for i, t in enumerate(vec.get_feature_names_out())}, vec.idf_, clf.coef_[0], float(clf.intercept_[0])
    )
    probe = data.texts[::37] + ["this exam is killing me", "", "zzzz qqqq", "Pills. Tonight. Nobody will notice."]
    want = clf.predict_proba(vec.transform(probe))[:, 1]
    got = np.array([ours.score(t) for t in probe])
    assert np.allclose(got, want, atol=1e-9), np.abs(got - want).max()
    assert np.allclose(ours.score_batch(probe), want, atol=1e-9)  # the batch, scored as one sparse computation
    assert want.std() > 0.1  # the probe spans confident and unsure scores


def test_shipped_mix_uses_both_models(models):
    _, risk = models
    assert risk.lexical is not None and 0.0 < risk.embedding_weight < 1.0 and len(risk.lexical.vocab) > 1000


def test_happy_messages_are_not_answered_under_caution(models):
    text_model, risk = models
    happy = [
        "I finally finished my thesis after three years, I can't believe it!",
        "Thank you so much, this really helped me today.",
        "We got the keys to our first flat this morning!",
        "I'm so proud of my daughter, she passed her driving test.",
    ]
    results = assess_texts(text_model, risk, happy, load_warning_signs())
    assert [r.level for r in results] == ["none"] * len(happy), [(t, r.score) for t, r in zip(happy, results)]


def test_the_positive_gate_never_hides_an_explicit_risk(models):
    text_model, risk = models
    r = assess_texts(text_model, risk, ["I'm actually happy now that I've decided to kill myself tomorrow."])[0]
    assert r.level == "crisis" and r.rule is not None
