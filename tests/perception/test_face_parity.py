"""The face model gives the same outputs on Keras's TensorFlow backend as on torch (`make test-tensorflow` runs
the TensorFlow side in its own venv and points PERSONA_FACE_TF_OUTPUTS at the result)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from perception.face.expression import default_face_model_paths, load_face_expression
from perception.face.parity import parity_crops

TF_OUTPUTS = os.environ.get("PERSONA_FACE_TF_OUTPUTS")


@pytest.mark.skipif(not TF_OUTPUTS, reason="TensorFlow outputs not computed: run `make test-tensorflow`")
def test_tensorflow_and_torch_backends_agree():
    tf = np.load(TF_OUTPUTS)
    assert str(tf["backend"]) == "tensorflow"
    model = load_face_expression(default_face_model_paths())
    assert model.backend == "torch"
    probs, emb = model.predict(parity_crops())
    np.testing.assert_allclose(probs, tf["probs"], atol=1e-4)
    np.testing.assert_allclose(emb, tf["embedding"], atol=1e-3, rtol=1e-3)
    assert (probs.argmax(1) == tf["probs"].argmax(1)).all()
    print(f"max |Δp| over {len(probs)} crops: {np.abs(probs - tf['probs']).max():.2e}")
