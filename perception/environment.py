"""Environment the third-party libraries read, set once at process start-up (the CLI entry, the runtime factory)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "persona-agent"  # models built or fetched on first use, stores, keys


def configure_third_party() -> None:
    """Keras 3 runs our face model on the torch backend unless KERAS_BACKEND says otherwise (the TensorFlow parity
    check sets it to tensorflow); it must be set before keras is first imported. deepface's home is set by its one
    factory (`load_deepface_perceiver`), which is given the folder."""
    os.environ.setdefault("KERAS_BACKEND", "torch")


def require_keras_backend() -> None:
    if "KERAS_BACKEND" not in os.environ:
        raise RuntimeError(
            "KERAS_BACKEND is not set: call perception.environment.configure_third_party() at start-up, "
            "before keras is imported"
        )
