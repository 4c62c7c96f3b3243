"""Pipecat integration: a frame processor that hands a Pipecat bot's user turns to a persona-agent backend.

    pip install 'persona-agent[pipecat]'      # pipecat-ai and the Python client, nothing of the backend

    from integrations.pipecat import PersonaAgentProcessor
    pipeline = Pipeline([transport.input(), stt, PersonaAgentProcessor("ws://backend:8000/v1/chat", key="pk_..."),
                         tts, transport.output()])

It takes the place of the LLM service: each final `TranscriptionFrame` (the user's words from your STT) goes to the
backend as a `user.text` turn over our WebSocket, through `persona_client`. With `voice=True` it forwards the
microphone instead (`InputAudioRawFrame`s, resampled to 16 kHz mono PCM16): the backend hears the user itself — its
speech-to-text, the prosody reading, Smart Turn end of turn, barge-in — and its transcripts come back as
`InterimTranscriptionFrame`s and `TranscriptionFrame`s (no STT service needed; transcriptions from one are then
ignored). With `face=True` camera frames (`InputImageRawFrame`, e.g. from a transport with video in) go as JPEG, at
most `face_fps` a second, and the face reading joins the fusion. The reply streams back as
`LLMTextFrame`s between `LLMFullResponseStartFrame` and `LLMFullResponseEndFrame`, ready for a TTS service. What the
backend read and decided comes as frames too — `PersonaEventFrame` for perception, persona, controls and the final
`response.done` (with the explanation), and `PersonaSafetyFrame` for safety events (route those to people). An
`InterruptionFrame` (the user talks over the bot) cancels the reply in flight; an `EndFrame` waits for the reply in
flight, then closes the session.
"""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    DataFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputImageRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.time import time_now_iso8601

from persona_client import PersonaClient

__all__ = ["PersonaAgentProcessor", "PersonaEventFrame", "PersonaSafetyFrame"]

_FORWARDED = ("perception", "persona", "controls", "response.done", "face.absent", "transcript")
_RATE = 16_000  # the backend's microphone rate
# errors about a microphone chunk or a camera frame: the turn in flight, if any, goes on
_MEDIA_ERRORS = frozenset(
    {"invalid_audio", "audio_frame_too_large", "audio_overflow", "no_audio", "voice_unavailable"}
    | {"invalid_image", "unsupported_image", "image_too_large", "image_rate_limited", "face_unavailable"}
)


@dataclass
class PersonaEventFrame(DataFrame):
    """One event of the persona-agent protocol, as the backend sent it (`event["type"]` says which)."""

    event: dict[str, Any] = field(default_factory=dict)


@dataclass
class PersonaSafetyFrame(PersonaEventFrame):
    """A `safety` event: crisis replies, caution prompts, safe mode entered or released, output blocked."""


class PersonaAgentProcessor(FrameProcessor):
    def __init__(
        self,
        url: str,
        *,
        key: str | None = None,
        profile: str | None = None,
        user_id: str | None = None,
        voice: bool = False,
        face: bool = False,
        face_fps: float = 1.0,
        end_timeout_s: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._url, self._key, self._profile, self._user_id = url, key, profile, user_id
        self._voice, self._face, self._face_every_s = voice, face, 1.0 / face_fps
        self._resampler = create_stream_resampler()
        self._last_image = float("-inf")
        self._end_timeout_s = end_timeout_s
        self._stack: AsyncExitStack | None = None
        self._client: PersonaClient | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending = 0  # user turns sent whose reply has not ended yet
        self._idle = asyncio.Event()
        self._idle.set()
        self._started_reply = False

    @property
    def session_id(self) -> str | None:
        return self._client.session_id if self._client is not None else None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._open()
            await self.push_frame(frame, direction)
        elif isinstance(frame, TranscriptionFrame) and direction == FrameDirection.DOWNSTREAM:
            if frame.text.strip() and not self._voice:  # with voice on, the backend transcribes the audio itself
                await self._ask(frame.text)
        elif isinstance(frame, InputAudioRawFrame) and self._voice:
            await self._hear(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InputImageRawFrame) and self._face:
            await self._see(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            if self._client is not None and self._pending:
                await self._client.cancel()
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame):
            try:
                await asyncio.wait_for(self._idle.wait(), self._end_timeout_s)  # let the reply in flight finish
            finally:
                await self._close()
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            await self._close()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _open(self) -> None:
        self._stack = AsyncExitStack()
        self._client = await self._stack.enter_async_context(
            PersonaClient.connect(
                self._url,
                key=self._key,
                profile=self._profile,
                user_id=self._user_id,
                voice=self._voice,
                face=self._face,
            )
        )
        self._reader = asyncio.create_task(self._read(), name="persona-agent-reader")

    async def _ask(self, text: str) -> None:
        assert self._client is not None, "the processor has not started"
        self._pending += 1
        self._idle.clear()
        await self._client.send({"type": "user.text", "text": text})

    async def _hear(self, frame: InputAudioRawFrame) -> None:
        """A microphone chunk, as 16 kHz mono PCM16."""
        if self._client is None:
            return
        audio = frame.audio
        if frame.num_channels > 1:
            pcm = np.frombuffer(audio, dtype="<i2").reshape(-1, frame.num_channels)
            audio = pcm.mean(axis=1).astype("<i2").tobytes()
        if frame.sample_rate != _RATE:
            audio = await self._resampler.resample(audio, frame.sample_rate, _RATE)
        if audio:
            await self._client.send_audio(audio)

    async def _see(self, frame: InputImageRawFrame) -> None:
        """A camera frame, as JPEG, at most one per `face_fps` period (the backend reads a few a second)."""
        now = time.monotonic()
        if self._client is None or now - self._last_image < self._face_every_s:
            return
        self._last_image = now
        jpeg = await asyncio.to_thread(_jpeg, frame)
        await self._client.send_image(jpeg)

    async def _read(self) -> None:
        assert self._client is not None
        async for ev in self._client.events(timeout=3600):
            kind = ev["type"]
            if kind == "response.delta":
                if not self._started_reply:
                    self._started_reply = True
                    await self.push_frame(LLMFullResponseStartFrame())
                await self.push_frame(LLMTextFrame(ev["text"]))
            elif kind == "safety":
                await self.push_frame(PersonaSafetyFrame(event=ev))
            if kind == "transcript":
                await self._heard(ev)
            elif kind in _FORWARDED:
                await self.push_frame(PersonaEventFrame(event=ev))
            if kind in ("response.done", "response.cancelled", "response.interrupted") or (
                kind == "error" and ev["code"] not in _MEDIA_ERRORS and self._pending
            ):
                if kind == "error":
                    await self.push_error(f"persona-agent: {ev['code']}: {ev['message']}")
                if self._started_reply:
                    await self.push_frame(LLMFullResponseEndFrame())
                    self._started_reply = False
                self._pending = max(0, self._pending - 1)
                if not self._pending:
                    self._idle.set()

    async def _heard(self, ev: dict[str, Any]) -> None:
        """The backend's transcript of the user's speech, as Pipecat's transcription frames; a final one with words
        (not an acknowledgement said over the reply) is a turn the backend answers."""
        stamp = time_now_iso8601()
        if not ev["final"]:
            await self.push_frame(
                InterimTranscriptionFrame(text=ev["text"], user_id=self._user_id or "", timestamp=stamp)
            )
        elif ev["text"] and not ev.get("backchannel"):
            self._pending += 1
            self._idle.clear()
            user = self._user_id or ""
            await self.push_frame(TranscriptionFrame(text=ev["text"], user_id=user, timestamp=stamp, finalized=True))

    async def _close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._stack is not None:
            await self._stack.aclose()
            self._stack, self._client = None, None
        self._pending = 0
        self._idle.set()


def _jpeg(frame: InputImageRawFrame) -> bytes:
    from PIL import Image

    image = Image.frombytes(frame.format or "RGB", frame.size, frame.image).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
