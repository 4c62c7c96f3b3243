"""Semantic end of turn: Smart Turn v3.2 (Pipecat's 8.7 MB ONNX, shipped inside the BSD-2 `pipecat-ai` wheel) reads
the last 8 s of an utterance and says whether the speaker has finished what they were saying ("I was thinking …" is
not finished, however long the pause), so a short silence can end a complete turn and an incomplete one can wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from perception.voice.audio import SAMPLE_RATE

WINDOW_S = 8  # the model reads the last 8 s, zero-padded in front when shorter


@dataclass(frozen=True)
class SmartTurn:
    session: Any  # onnxruntime.InferenceSession
    features: Any  # (audio [8 s at 16 kHz]) -> log-mel [80, 800], Whisper-style, as the model was trained
    name: str = "smart-turn-v3.2"

    def complete(self, audio: np.ndarray) -> float:
        """Probability that the utterance (float32, 16 kHz) is a finished turn (blocking, ~10-30 ms on one thread)."""
        n = WINDOW_S * SAMPLE_RATE
        x = audio[-n:].astype(np.float32)
        if x.size < n:
            x = np.pad(x, (n - x.size, 0))
        mel = self.features(x, do_normalize=True)
        return float(np.asarray(self.session.run(None, {"input_features": mel[None].astype(np.float32)})[0]).ravel()[0])


def load_smart_turn(threads: int = 1) -> SmartTurn | None:
    """The model and its feature extractor from the installed `pipecat-ai` wheel; None when it is not installed (then
    turns end on silence alone)."""
    try:
        from importlib import resources

        import onnxruntime as ort
        from pipecat.audio.turn.smart_turn._whisper_features import compute_whisper_log_mel_features
    except ImportError:
        return None
    path = resources.files("pipecat.audio.turn.smart_turn.data").joinpath("smart-turn-v3.2-cpu.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    return SmartTurn(session=session, features=compute_whisper_log_mel_features)
