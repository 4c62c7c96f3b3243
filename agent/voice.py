"""Streaming voice input for one conversation: VAD turn-taking, interim and final transcripts, barge-in."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agent.tasks import cancel_and_wait
from perception import ModalitySignal
from perception.voice.affect import VoiceAffectModel
from perception.voice.audio import SAMPLE_RATE
from perception.voice.stt import SpeechToText, Transcript
from perception.voice.turn import SmartTurn
from perception.voice.vad import VadEvent, VadModel, VadStream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VoiceModels:
    vad: VadModel
    stt: SpeechToText
    affect: VoiceAffectModel
    turn: SmartTurn | None = None  # semantic end of turn (None: the `pipecat-ai` wheel is not installed)


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    barge_in_min_ms: int = 150  # speech this long while a reply streams interrupts it
    interim_every_s: float = 1.0  # an interim transcript per this much new speech
    max_utterance_s: float = 30.0  # an utterance is cut (and answered) at this length
    max_pending_s: float = 60.0  # audio received but not yet processed, before the client is told to slow down
    pre_roll_ms: int = 200  # audio kept before the VAD's start mark
    # How a spoken turn ends. "vad": after vad_silence_ms of silence (None: PERSONA_VAD_MIN_SILENCE_MS).
    # "smart_turn": after a short silence the Smart Turn model reads the utterance: finished -> the turn ends now;
    # unfinished -> it waits for more speech, up to turn_max_silence_ms of silence. "manual": only when the client
    # says so (end_of_utterance), pauses included; speech onset still interrupts a reply.
    end_of_turn: Literal["vad", "smart_turn", "manual"] = "smart_turn"
    vad_silence_ms: int | None = None
    turn_min_silence_ms: int = 150
    turn_max_silence_ms: int = 1200
    turn_threshold: float = 0.5  # Smart Turn probability of "finished" that ends the turn
    # With Smart Turn, at a pause the words so far are transcribed at once and the reply is started on them, unseen,
    # while the end of the turn is decided: released if the turn ends there, discarded if the speaker goes on.
    speculate: bool = True
    # While a spoken reply plays, speech interrupts it only once it lasts this long or its transcript is more than
    # an acknowledgement ("mm-hmm", "yeah", "right"): a backchannel does not cut the agent off.
    backchannel_max_ms: int = 700  # of speech heard (silence within the utterance not counted)


@dataclass(frozen=True, slots=True)
class Utterance:
    transcript: Transcript
    voice: ModalitySignal | None


class AudioBackpressure(RuntimeError):
    pass


_BACKCHANNEL = re.compile(
    r"^(?:(?:mm+-?hmm+|m+hm+|uh-?huh|uh|um+|hmm+|mm+|ah+|oh+|wow|yeah|yea|yep|yes|ya|okay|ok|right|sure|true|exactly|"
    r"cool|nice|i see|got it|i know|totally|alright|all right|of course|definitely|absolutely|indeed|go on)[\s,.!?]*){1,3}$",
    re.I,
)


def backchannel(text: str) -> bool:
    """Is this utterance only an acknowledgement (one to three of them, "Mm-hmm, yeah.")?"""
    t = " ".join(text.replace("\u2019", "'").split()).strip(" .,!?")
    return bool(t) and _BACKCHANNEL.match(t + " ") is not None


class _PauseCheck:
    """Queued by the pause timer: has the paused utterance stayed silent for turn_max_silence_ms of wall time? (The
    client may stop sending audio altogether, so stream time alone cannot end it.)"""

    def __init__(self, paused_at: int) -> None:
        self.paused_at = paused_at


class VoiceInput:
    """Runs its own task; calls back into the conversation on speech onset, interim text and final utterances."""

    def __init__(
        self,
        models: VoiceModels,
        cfg: VoiceConfig,
        *,
        on_speech: Callable[[int], Awaitable[None]],
        on_interim: Callable[[str, int], Awaitable[None]],
        on_final: Callable[[Utterance | None, int], Awaitable[None]],
        on_sustained: Callable[[int], Awaitable[None]] | None = None,
        on_tentative: Callable[[Utterance, int], Awaitable[None]] | None = None,
        on_resumed: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.models = models
        self._on_speech, self._on_interim, self._on_final = on_speech, on_interim, on_final
        # At a pause the utterance so far is transcribed at once: `on_tentative` gets it while the end of the turn is
        # still undecided (the conversation may start answering it, unseen); `on_resumed` says the speaker went on.
        self._on_tentative, self._on_resumed = on_tentative, on_resumed
        self._tentative: asyncio.Task[None] | None = None
        self._on_sustained = on_sustained  # speech has gone on for backchannel_max_ms: more than an acknowledgement
        self._sustained_reported = False
        self._vad: VadStream = models.vad.stream()
        self.configure(cfg)
        self._paused_at: int | None = None  # an unfinished utterance's speech stopped here; more may come
        self._queue: asyncio.Queue[np.ndarray | _PauseCheck | None] = asyncio.Queue()
        self._pause_timer: asyncio.Task[None] | None = None
        self._pending = 0  # samples queued, not yet through the VAD
        self._chunks: deque[np.ndarray] = deque()  # recent audio, at most max_utterance_s + 2 s
        self._held = 0  # samples in _chunks
        self._ring_start = 0  # stream position of the first held sample
        self._speech_start: int | None = None  # where the utterance's audio begins (VAD start minus pre-roll)
        self._onset = 0  # where the VAD heard speech begin
        self._onset_reported = False
        self._last_interim = 0
        self._interim_task: asyncio.Task[None] | None = None
        # (end sample, its transcription and voice reading) started when the speaker paused, for _finish if the turn
        # ends there
        self._early: tuple[int, asyncio.Future[Utterance]] | None = None
        self.utterance_id = 0
        self._working = False
        self._end_queued = False  # a user.audio.end waits in the queue: more of them in a row are one
        self._fresh = 0  # samples received since the last user.audio.end: none, and an end has nothing to transcribe
        self._task = asyncio.create_task(self._loop(), name="voice-input")

    def configure(self, cfg: VoiceConfig) -> None:
        """How turns end from the next chunk on (a session may change it while the microphone runs)."""
        self.cfg = cfg
        self.smart = self.models.turn if cfg.end_of_turn == "smart_turn" else None
        if self.smart is not None:
            self._vad.min_silence_ms = cfg.turn_min_silence_ms
        elif cfg.vad_silence_ms is not None:
            self._vad.min_silence_ms = cfg.vad_silence_ms
        else:
            self._vad.min_silence_ms = self.models.vad.min_silence_ms

    @property
    def busy(self) -> bool:
        """Audio is waiting or being read (VAD, speech-to-text): the session is not idle."""
        return self._working or not self._queue.empty()

    def state(self) -> str:
        """For the log: where the microphone stands."""
        return (
            f"utterance {self.utterance_id}, {self._queue.qsize()} chunks waiting, working={self._working}, "
            f"in speech={self._speech_start is not None}, vad at {self._vad.position / SAMPLE_RATE:.2f} s, "
            f"loop {'ended: ' + repr(self._task.exception()) if self._task.done() and not self._task.cancelled() else 'running'}"
        )

    def submit(self, samples: np.ndarray) -> None:
        if (self._pending + samples.size) / SAMPLE_RATE > self.cfg.max_pending_s:
            raise AudioBackpressure(
                f"more than {self.cfg.max_pending_s:.0f} s of audio waiting; send at real-time pace"
            )
        self._pending += samples.size
        self._queue.put_nowait(samples)

    def end_of_utterance(self) -> None:
        """The client says the user stopped talking (push-to-talk release): finish the utterance now. Ends in a row,
        or with no audio since the last one, transcribe nothing again (30 of them cost one transcription, not 30)."""
        if not self._end_queued:
            self._end_queued = True
            self._queue.put_nowait(None)

    async def aclose(self) -> None:
        early = self._early[1] if self._early is not None else None
        await cancel_and_wait(self._task, self._interim_task, self._pause_timer, self._tentative, early)

    async def _loop(self) -> None:
        while True:
            chunk = await self._queue.get()
            self._working = True
            try:
                await self._read(chunk)
            except Exception:  # one bad chunk must not silently end the session's microphone
                log.exception("voice input failed on a chunk; the microphone goes on")
            finally:
                self._working = False

    async def _read(self, chunk: np.ndarray | _PauseCheck | None) -> None:
        if isinstance(chunk, _PauseCheck):
            await self._pause_check(chunk)
        elif chunk is None:
            await self._input_ended()
        else:
            await self._audio(chunk)

    async def _pause_check(self, chunk: _PauseCheck) -> None:
        if self._paused_at != chunk.paused_at or self._speech_start is None:
            return  # the speaker went on (or the turn ended otherwise)
        await self._finish(chunk.paused_at)

    def _heard(self, audio: np.ndarray) -> asyncio.Future[Utterance]:
        """The utterance's words and how it sounded, read together (two worker threads)."""

        async def read() -> Utterance:
            transcript, voice = await asyncio.gather(
                asyncio.to_thread(self.models.stt.transcribe, audio),
                asyncio.to_thread(self.models.affect.perceive, audio),
            )
            return Utterance(transcript=transcript, voice=voice)

        return asyncio.ensure_future(read())

    def _paused(self, end: int) -> None:
        """Speech stopped at `end` and the turn may be over: read what was said now, so the words are ready when the
        end of the turn is decided, and hand them to on_tentative meanwhile (unless the speaker goes on first)."""
        assert self._speech_start is not None
        heard = self._heard(self._slice(self._speech_start, end))
        self._early = (end, heard)
        if self._on_tentative is not None:
            self._tentative = asyncio.create_task(self._tell_tentative(end, heard, self.utterance_id))

    async def _tell_tentative(self, end: int, heard: asyncio.Future[Utterance], uid: int) -> None:
        utt = await asyncio.shield(heard)
        if self._early is not None and self._early[0] == end and uid == self.utterance_id and utt.transcript.text:
            assert self._on_tentative is not None
            await self._on_tentative(utt, uid)

    async def _input_ended(self) -> None:
        self._end_queued = False
        fresh, self._fresh = self._fresh, 0
        if fresh and (self._speech_start is not None or self._vad.triggered):
            await self._finish(self._vad.position)
        else:
            await self._on_final(None, self.utterance_id)  # nothing was said

    async def _audio(self, chunk: np.ndarray) -> None:
        self._pending -= chunk.size
        self._append(chunk)
        for ev in await asyncio.to_thread(self._vad.feed, chunk):
            await self._vad_event(ev)
        if (
            self._paused_at is not None
            and self._vad.position - self._paused_at >= self.cfg.turn_max_silence_ms * SAMPLE_RATE // 1000
        ):
            await self._finish(self._paused_at)  # unfinished, but the speaker has stopped for long enough
        if self._speech_start is not None:
            await self._speaking()

    async def _vad_event(self, ev: VadEvent) -> None:
        if ev.kind == "start" and self._speech_start is None:
            self._speech_start = max(self._ring_start, ev.sample - self.cfg.pre_roll_ms * SAMPLE_RATE // 1000)
            self._onset = ev.sample
            self._onset_reported = False
            self._sustained_reported = False
            self._last_interim = ev.sample
        elif ev.kind == "start":
            self._paused_at = None  # the speaker went on: the same utterance
            if self._early is not None:  # its early reading is now too short, and what was started on it goes
                self._early = None
                if self._on_resumed is not None:
                    await self._on_resumed(self.utterance_id)
        elif ev.kind == "end" and self._speech_start is not None:
            if self.cfg.end_of_turn == "manual":
                return  # a pause: the client ends the turn
            if self.smart is not None:
                self._paused(ev.sample)  # read it while Smart Turn decides
            if self.smart is None or await self._finished():
                await self._finish(ev.sample)
            else:
                self._paused_at = ev.sample
                waited = (self._vad.position - ev.sample) / SAMPLE_RATE
                self._pause_timer = asyncio.create_task(
                    self._check_later(ev.sample, self.cfg.turn_max_silence_ms / 1000 - waited)
                )

    async def _speaking(self) -> None:
        """While an utterance runs: report its onset (barge-in) and that it is sustained, cut it at its maximum
        length, and transcribe it now and then (interim transcripts)."""
        assert self._speech_start is not None
        pos = self._vad.position
        if not self._onset_reported and pos - self._onset >= self.cfg.barge_in_min_ms * SAMPLE_RATE // 1000:
            self._onset_reported = True
            await self._on_speech(self.utterance_id)
        if (
            self._on_sustained is not None
            and not self._sustained_reported
            and self._vad.last_voiced - self._onset >= self.cfg.backchannel_max_ms * SAMPLE_RATE // 1000
        ):
            self._sustained_reported = True
            await self._on_sustained(self.utterance_id)
        if pos - self._speech_start >= self.cfg.max_utterance_s * SAMPLE_RATE:
            await self._finish(pos)
        elif (
            pos - self._last_interim >= self.cfg.interim_every_s * SAMPLE_RATE
            and (self._interim_task is None or self._interim_task.done())
            and pos - self._vad.last_voiced < SAMPLE_RATE // 10
        ):
            # (not while the speaker is silent: the utterance may be ending, and an interim transcript then only
            # holds up the final one, on the same cores)
            self._last_interim = pos
            audio = self._slice(self._speech_start, pos)
            self._interim_task = asyncio.create_task(self._interim(audio, self.utterance_id))

    def _append(self, chunk: np.ndarray) -> None:
        keep = int((self.cfg.max_utterance_s + 2) * SAMPLE_RATE)
        self._chunks.append(chunk)
        self._fresh += chunk.size
        self._held += chunk.size
        while self._held - self._chunks[0].size >= keep:
            dropped = self._chunks.popleft()
            self._held -= dropped.size
            self._ring_start += dropped.size

    def _slice(self, start: int, end: int) -> np.ndarray:
        held = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        a = max(0, start - self._ring_start)
        b = max(a, end - self._ring_start)
        return held[a:b]

    async def _interim(self, audio: np.ndarray, utterance_id: int) -> None:
        t = await asyncio.to_thread(self.models.stt.transcribe, audio)
        if t.text and utterance_id == self.utterance_id:
            await self._on_interim(t.text, utterance_id)

    async def _check_later(self, paused_at: int, delay_s: float) -> None:
        await asyncio.sleep(max(0.0, delay_s))
        self._queue.put_nowait(_PauseCheck(paused_at))

    async def _finished(self) -> bool:
        """Smart Turn on the utterance so far (with the short silence after it, as the model was trained)."""
        assert self.smart is not None and self._speech_start is not None
        audio = self._slice(self._speech_start, self._vad.position)
        p = await asyncio.to_thread(self.smart.complete, audio)
        log.debug("smart turn: utterance %d p(finished)=%.3f", self.utterance_id, p)
        return p >= self.cfg.turn_threshold

    async def _finish(self, end: int) -> None:
        self._paused_at = None
        if self._pause_timer is not None and not self._pause_timer.done():
            self._pause_timer.cancel()
        start = self._speech_start if self._speech_start is not None else max(self._ring_start, end - SAMPLE_RATE)
        audio = self._slice(start, end)
        self._speech_start = None
        uid = self.utterance_id
        self.utterance_id += 1
        if self._interim_task is not None and not self._interim_task.done():
            self._interim_task.cancel()
        if audio.size < SAMPLE_RATE // 10:
            await self._on_final(None, uid)
            return
        early, self._early = self._early, None
        if early is not None and early[0] == end:
            heard = early[1]
            log.info("utterance %d: %.2f s of speech, transcribed from the pause on", uid, audio.size / SAMPLE_RATE)
        else:
            if early is not None:
                early[1].cancel()
            heard = self._heard(audio)
            log.info("utterance %d: %.2f s of speech to transcribe", uid, audio.size / SAMPLE_RATE)
        await self._on_final(await heard, uid)
