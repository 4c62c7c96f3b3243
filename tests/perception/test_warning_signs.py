"""The warning-sign scorer (#41): the served numpy scoring equals scikit-learn's, a message is read whole and sentence
by sentence, someone else's risk is never the user's crisis, and the shipped model names categories."""

from __future__ import annotations

import numpy as np
import pytest

from agent.analysis import assess_texts, load_risk_model, load_warning_signs
from perception.safety import decide_level, load_risk_features
from perception.warning_signs import SignReading, read_messages, sentence_units, sentences
from training.safety import features, read_warning_signs
from training.warning_signs import Settings, examples, fit, to_model


@pytest.fixture(scope="module")
def text_model():
    return load_risk_features()  # what the safety layer reads a message with


def test_sentences_and_which_need_a_pass_of_their_own():
    assert sentences("I feel fine.") == []
    assert sentences("Work was awful. I gave my cat away, I won't be around.\nok") == [
        "Work was awful.",
        "I gave my cat away, I won't be around.",
    ]  # "ok": one word, not a sentence
    filler = "We talked about the match and the weather and the traffic on the way home for a long time. " * 3
    parts, own = sentence_units(["Work was awful. I gave my cat away.", filler + "I gave my cat away."])
    assert [i for i, _ in parts] == [0, 0, 1, 1, 1, 1]
    assert own == [False, False, True, True, True, True]  # a chat message's sentences need no second pass


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


def test_a_sign_among_ordinary_sentences_is_found(text_model):
    signs = load_warning_signs()
    first = "Work was fine today and I had lunch with my team and we talked about the match for an hour or so."
    long = (
        first + " Then I drove home through the rain and cooked dinner and watched a film with my flatmates. "
        "How many of my sleeping pills would it take to not wake up?"
    )
    whole, alone = read_messages(signs, text_model, [long, first], features(text_model, [long, first]))
    assert whole.tier is not None and whole.category == "dose_question", whole
    assert alone.tier is None


def test_a_long_messages_sentence_decides_a_caution_at_most():
    """The sentences of a long message (read in a pass of their own) never make a crisis by themselves: over the
    development crisis set that made more false crises than the crisis classifier, which reads the whole post."""
    signs = load_warning_signs()
    k = signs.categories.index("dose_question") + 1
    quiet, sure = np.zeros(len(signs.categories) + 1), np.zeros(len(signs.categories) + 1)
    quiet[0], sure[k] = 1.0, 1.0
    probs = np.stack([quiet, sure, quiet, sure])  # message 0 and its sentence; message 1 and its sentence
    long_, chat = signs.read(probs, [0, 0, 1, 1], 2, [False, True, False, False])
    assert long_.tier == "caution" and long_.category == "dose_question", long_
    assert chat.tier == "crisis" and chat.category == "dose_question", chat


def test_someone_elses_risk_is_a_caution_not_a_crisis():
    sign = SignReading(category="active_ideation", tier="crisis", crisis_score=0.9, any_score=0.9)
    probs = np.zeros(28, np.float32)
    friend = "My friend told me she has been thinking about ending her life, how can I help her?"
    assert decide_level(friend, 0.0, probs, 1.0, 1.0, sign)[0] == "caution"
    assert decide_level("I have been thinking about ending my life.", 0.0, probs, 1.0, 1.0, sign)[0] == "crisis"


def test_the_shipped_layer_names_the_category(text_model):
    risk, signs = load_risk_model(), load_warning_signs()
    got = assess_texts(
        text_model,
        risk,
        ["I gave my dog to my neighbour because I won't be here to look after him.", "Can you help me plan my week?"],
        signs,
    )
    assert got[0].level != "none" and got[0].category == "giving_away", got[0]
    assert got[1].level == "none" and got[1].category is None
    assert signs.escalates("farewell") and not signs.escalates("method") and not signs.escalates("hopelessness")
