"""A session's camera: frames read in arrival order off the event loop, rate-limited, the latest face kept a while."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from agent.events import Emit, ErrorEvent, FaceAbsent, PerceptionEvent
from agent.tasks import cancel_and_wait
from perception import ModalitySignal
from perception.face.image import ImageError, decode_image
from perception.face.perceiver import FacePerceiver, perceive_image

log = logging.getLogger(__name__)


class ImageBackpressure(RuntimeError):
    """Camera frames arrive faster than the session's limit; this one was refused (and said so), not queued."""


def perception_event(sig: ModalitySignal, evidence: dict[str, object]) -> PerceptionEvent:
    v, a = sig.valence_arousal
    return PerceptionEvent(
        modality=sig.modality,
        emotions=sig.emotions,
        top=sig.top,
        confidence=round(sig.confidence, 4),
        valence=round(v, 4),
        arousal=round(a, 4),
        model=sig.model,
        latency_ms=round(sig.latency_ms, 3),
        evidence=evidence,
    )


@dataclass(frozen=True, slots=True)
class _Frame:
    data: bytes
    explain: bool


def read_frame(face: FacePerceiver, data: bytes, explain: bool = False) -> tuple[ModalitySignal | None, float]:
    """A camera frame → (the largest face's signal or None when there is no face, milliseconds taken, decoding
    included). Blocking. Raises ImageError."""
    t0 = time.perf_counter()
    sig = perceive_image(face, decode_image(data), explain=explain)[1]
    return sig, (time.perf_counter() - t0) * 1000


class FrameInput:
    """Token bucket of `max_fps` per second (burst 2), at most two frames waiting; each frame's reading is announced
    as it arrives (perception or face.absent), and the latest face joins turns for `ttl_s`."""

    def __init__(self, face: FacePerceiver, emit: Emit, max_fps: float, ttl_s: float, name: str = "frames") -> None:
        self.face, self._emit, self.max_fps, self.ttl_s, self._name = face, emit, max_fps, ttl_s, name
        self._queue: asyncio.Queue[_Frame] = asyncio.Queue(maxsize=2)
        self._allowance = 2.0
        self._clock = time.monotonic()
        self._latest: tuple[ModalitySignal, float] | None = None  # signal, monotonic time
        self._worker: asyncio.Task[None] | None = None

    def submit(self, data: bytes, explain: bool = False) -> None:
        """One JPEG/PNG frame. Raises ImageBackpressure past the rate or when two frames already wait."""
        now = time.monotonic()
        self._allowance = min(2.0, self._allowance + (now - self._clock) * self.max_fps)
        self._clock = now
        if self._allowance < 1.0 or self._queue.full():
            raise ImageBackpressure(
                f"camera frames are limited to {self.max_fps:g} per second per session; frame refused"
            )
        self._allowance -= 1.0
        self._queue.put_nowait(_Frame(data, explain))
        if self._worker is None:
            self._worker = asyncio.create_task(self._read(), name=self._name)

    def fresh(self) -> ModalitySignal | None:
        """The latest face reading, unless it is older than ttl_s."""
        if self._latest is None or time.monotonic() - self._latest[1] > self.ttl_s:
            return None
        return self._latest[0]

    async def _read(self) -> None:
        while True:
            frame = await self._queue.get()
            try:
                sig, ms = await asyncio.to_thread(read_frame, self.face, frame.data, frame.explain)
            except ImageError as exc:
                await self._emit(ErrorEvent(code=exc.code, message=str(exc), retryable=False))
                continue
            except Exception:
                log.exception("face perception failed")
                await self._emit(
                    ErrorEvent(code="face_failed", message="the face model failed on that frame", retryable=True)
                )
                continue
            if sig is None:
                await self._emit(FaceAbsent(latency_ms=round(ms, 3), model=self.face.name))
                continue
            self._latest = (sig, time.monotonic())
            await self._emit(perception_event(sig, dict(sig.evidence)))

    async def aclose(self) -> None:
        await cancel_and_wait(self._worker)
