"""Write our face model's outputs on FER-2013 validation crops under whichever Keras backend is active, so the
TensorFlow path can be checked against the torch path (tests/perception/test_face_parity.py).

    KERAS_BACKEND=tensorflow .venv-tf/bin/python -m perception.face.parity OUT.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from perception.face.expression import default_face_model_paths, load_face_expression

PARITY_CROPS = 256


def parity_crops() -> np.ndarray:
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fer2013" / "fer2013_public_test.npz"
    with np.load(path) as z:
        return z["images"][:PARITY_CROPS]


def main(out: str) -> None:
    model = load_face_expression(default_face_model_paths())
    probs, emb = model.predict(parity_crops())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, probs=probs, embedding=emb, backend=model.backend, name=model.name)
    print(f"{model.name}: {len(probs)} crops -> {out}")


if __name__ == "__main__":
    from perception.environment import configure_third_party

    configure_third_party()  # keeps KERAS_BACKEND=tensorflow when the caller set it
    main(sys.argv[1])
