"""Streaming voice-activity detection with Silero VAD (its ONNX model ships inside the `silero-vad` package).

One model is loaded per process; each audio stream gets its own recurrent state (`VadModel.stream()`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from perception.voice.audio import SAMPLE_RATE

WINDOW = 512  # samples per VAD step at 16 kHz (32 ms), fixed by the model


@dataclass(frozen=True, slots=True)
class VadEvent:
    kind: Literal["start", "end"]
    sample: int  # position in the stream where speech started / ended


@dataclass(frozen=True)
class VadModel:
    model: Any  # silero_vad OnnxWrapper (shared ONNX session)
    threshold: float = 0.5
    min_silence_ms: int = 600  # silence that ends an utterance
    speech_pad_ms: int = 30

    def stream(self, min_silence_ms: int | None = None) -> VadStream:
        """A stream with its own state; `min_silence_ms` overrides the silence that ends an utterance."""
        wrapper = copy.copy(self.model)  # shares the InferenceSession ...
        wrapper.reset_states()  # ... but gets its own recurrent state
        return VadStream(
            self, wrapper, min_silence_ms=self.min_silence_ms if min_silence_ms is None else min_silence_ms
        )


@dataclass
class VadStream:
    """Feed float32 16 kHz audio of any chunk size; get speech start/end events. Not thread-safe: one per stream."""

    cfg: VadModel
    model: Any
    min_silence_ms: int = 600
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    _samples: int = 0
    triggered: bool = False
    last_voiced: int = 0  # stream position at the end of the last window heard as speech
    _temp_end: int = 0
    last_prob: float = 0.0

    def feed(self, audio: np.ndarray) -> list[VadEvent]:
        import torch

        buf = np.concatenate([self._pending, audio.astype(np.float32)])
        n = (buf.size // WINDOW) * WINDOW
        self._pending = buf[n:]
        events: list[VadEvent] = []
        min_silence = self.min_silence_ms * SAMPLE_RATE // 1000
        pad = self.cfg.speech_pad_ms * SAMPLE_RATE // 1000
        for s in range(0, n, WINDOW):
            prob = float(self.model(torch.from_numpy(buf[s : s + WINDOW]), SAMPLE_RATE).item())
            self.last_prob = prob
            self._samples += WINDOW
            if prob >= self.cfg.threshold:
                self.last_voiced = self._samples
                self._temp_end = 0
                if not self.triggered:
                    self.triggered = True
                    events.append(VadEvent("start", max(0, self._samples - WINDOW - pad)))
            elif prob < self.cfg.threshold - 0.15 and self.triggered:
                if not self._temp_end:
                    self._temp_end = self._samples
                if self._samples - self._temp_end >= min_silence:
                    self.triggered = False
                    events.append(VadEvent("end", self._temp_end + pad))
                    self._temp_end = 0
        return events

    @property
    def position(self) -> int:
        """Samples consumed so far (those waiting for a full window included)."""
        return self._samples + self._pending.size


def load_vad(threshold: float = 0.5, min_silence_ms: int = 600) -> VadModel:
    from silero_vad import load_silero_vad

    return VadModel(model=load_silero_vad(onnx=True), threshold=threshold, min_silence_ms=min_silence_ms)
