"""The warning-sign scorer (#41): the served numpy scoring equals scikit-learn's, a message is read whole and sentence
by sentence, someone else's risk is never the user's crisis, and the shipped model names categories."""
from __future__ import annotations

import numpy as np
import pytest

from agent import assess_texts, load_risk_model, load_text_model, load_warning_signs
from perception.safety import decide_level
from perception.warning_signs import SignReading, read_messages, sentences
from training.safety import features, read_warning_signs
from training.warning_signs import Settings, examples, fit, to_model


@pytest.fixture(scope="module")
def text_model():
    return load_text_model(None, threads=1)


def test_sentences_split_only_messages_of_several():
    assert sentences("I feel fine.") == []
    assert sentences("Work was awful. I gave my cat away, I won't be around. ok") == [
        "Work was awful.", "I gave my cat away, I won't be around."]  # "ok": one word, not a sentence
    assert sentences("line one here\nline two here") == ["line one here", "line two here"]


def test_served_scoring_matches_scikit_learn(text_model):
    """Fit on half A the way `train warning-signs` does, export, and compare the numpy probabilities with
    scikit-learn's on half B (which the fit never saw)."""
    signs = read_warning_signs()
    ex = examples(text_model, signs, ("a",), augment=False)
    f = fit(ex, Settings())
    served = to_model(f, signs, 0.5, 0.5)
    probe = [t for texts in signs.halves["b"].values() for t in texts[:2]] + ["", "zzzz qqqq"]
    x = features(text_model, probe)
    want = f.probs(x, probe)
    got = served.probs(x, probe)
    assert np.allclose(got, want, atol=1e-6), np.abs(got - want).max()
    assert want[:, 0].std() > 0.1  # the probe spans confident and unsure readings


def test_the_strongest_sentence_decides(text_model):
    signs = load_warning_signs()
    long = ("Work was fine today and I had lunch with my team. We talked about the match. "
            "How many of my sleeping pills would it take to not wake up?")
    whole, alone = read_messages(signs, text_model, [long, long.split(". ")[0]],
                                 features(text_model, [long, long.split(". ")[0]]))
    assert whole.tier == "crisis" and whole.category == "dose_question", whole
    assert alone.tier is None


def test_someone_elses_risk_is_a_caution_not_a_crisis():
    sign = SignReading(category="active_ideation", tier="crisis", crisis_score=0.9, any_score=0.9)
    probs = np.zeros(28, np.float32)
    friend = "My friend told me she has been thinking about ending her life, how can I help her?"
    assert decide_level(friend, 0.0, probs, 1.0, 1.0, sign)[0] == "caution"
    assert decide_level("I have been thinking about ending my life.", 0.0, probs, 1.0, 1.0, sign)[0] == "crisis"


def test_the_shipped_layer_names_the_category(text_model):
    risk, signs = load_risk_model(), load_warning_signs()
    got = assess_texts(text_model, risk, ["I gave my dog to my neighbour because I won't be here to look after him.",
                                          "Can you help me plan my week?"], signs)
    assert got[0].level != "none" and got[0].category == "giving_away", got[0]
    assert got[1].level == "none" and got[1].category is None
    assert signs.escalates("farewell") and not signs.escalates("method") and not signs.escalates("hopelessness")
