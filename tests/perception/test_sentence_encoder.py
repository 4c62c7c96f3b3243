"""The safety encoder (perception/sentence_encoder.py) as built by `make setup`: it reads meaning over wording, a
message's embedding does not depend on the batch it came in, the 8-bit artifact stays with the float model, and the
safety layer refuses to start on classifiers trained on other features than it makes."""

from __future__ import annotations

import numpy as np
import pytest

from agent.analysis import load_risk_model, load_warning_signs
from agent.reading import TextReader
from perception.sentence_encoder import DIM, load_sentence_encoder
from perception.text_model import load_text_model


@pytest.fixture(scope="module")
def encoder():
    return load_sentence_encoder(threads=2)


def test_meaning_over_wording(encoder):
    said = "I gave my dog to my neighbour because I won't be around to look after him."
    same_meaning = "Found a new home for my dog, he'll be better off with someone who'll still be here."
    same_words = "My neighbour's dog won't stop barking when I'm around, I gave up asking him to look after it."
    e = encoder.encode([said, same_meaning, same_words])
    assert e.shape == (3, DIM)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2], (e[0] @ e[1], e[0] @ e[2])


def test_a_message_reads_the_same_whatever_its_batch(encoder):
    texts = [
        "hi",
        "how many of my sleeping pills would it take to not wake up",
        "Work was long today and the bus was late again, then I cooked dinner and watched a film with friends.",
    ]
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    batched = encoder.encode(texts + ["a much longer message that pads every other one in its batch " * 6])[:3]
    assert np.min(np.sum(alone * batched, axis=1)) > 0.9999


def test_the_8_bit_artifact_stays_with_the_float_model(encoder):
    torch = pytest.importorskip("torch")
    from transformers import AutoModel

    from training.text import base_model_dir

    texts = ["I can't do this anymore", "thanks for everything, take care of mum for me", "lovely weather today"]
    model = AutoModel.from_pretrained(base_model_dir("mpnet")).eval()
    want = []
    for t in texts:
        ids = torch.tensor([encoder.tokenizer.encode(t).ids])
        with torch.inference_mode():
            h = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.mean(1)[0].numpy()
        want.append(h / np.linalg.norm(h))
    assert np.min(np.sum(encoder.encode(texts) * np.stack(want), axis=1)) > 0.999


def test_classifiers_trained_with_the_encoder_refuse_to_serve_without_it():
    model = load_text_model(None, threads=1)
    with pytest.raises(RuntimeError, match="trained on .* features"):
        TextReader(model, model, load_risk_model(), None, load_warning_signs(), encoder=None)
