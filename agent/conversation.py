"""One live conversation's lifecycle: an inbox of user turns run one at a time (agent/turn.py), cancel and barge-in,
the session's microphone and camera, close."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Literal

from agent.events import (
    ControlsUpdated,
    Emit,
    ErrorEvent,
    ResponseAudioTruncated,
    ResponseCancelled,
    ResponseInterrupted,
    SessionStarted,
    SpeechStarted,
    TranscriptEvent,
)
from agent.frames import FrameInput
from agent.metrics import SPECULATION
from agent.sessions.store import SessionErased, SessionRecord
from agent.tasks import cancel_and_wait
from agent.tts import SpokenReply, heard_text
from agent.turn import Paused, Pipeline, Turn, UserTurn
from agent.voice import Utterance, VoiceConfig, VoiceInput, VoiceModels, backchannel
from perception.face.perceiver import FacePerceiver
from perception.voice.audio import pcm16_to_float
from persona import apply_overrides
from prompts import Message
from prompts.tools import NO_TOOLS, ToolResult, ToolUse

log = logging.getLogger(__name__)
Evict = Callable[[], Awaitable[None]]  # tells the connection its session was taken over, and closes it
Admit = Callable[[], Awaitable[bool]]  # may this (spoken) turn run? The key's rate limit, drawn by the edge
MAX_PENDING_TURNS = 8  # user turns waiting behind the running one; past this a turn is refused, never dropped
TOOL_TIMEOUT_S = 120.0  # how long a turn paused on tool calls waits for their outputs, unless the session says


class UnknownCall(LookupError):
    """tool.result for a call this conversation is not waiting on (never made, already answered, or given up when
    the user spoke again)."""


class InboxFull(RuntimeError):
    """MAX_PENDING_TURNS turns already wait: this one was not queued (the client sends it again later)."""


class VoiceUnavailable(RuntimeError):
    pass


class FaceUnavailable(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Inputs:
    """The media a session may send, with the shared models that read it (None: not enabled on this server)."""

    voice: VoiceModels | None = None
    voice_config: VoiceConfig = VoiceConfig()
    face: FacePerceiver | None = None
    face_max_fps: float = 5.0  # camera frames accepted per second per session (burst of 2)
    face_ttl_s: float = 15.0  # a face reading older than this no longer joins a turn's fusion


class Conversation:
    """Owns its worker task and the running turn; `close()` cancels both (and with them the LLM stream)."""

    def __init__(
        self,
        pipeline: Pipeline,
        record: SessionRecord,
        emit: Emit,
        inputs: Inputs,
        release: Callable[[Conversation], None],
        locale: str | None = None,
        admit: Admit | None = None,
        voice_reply: bool = False,
    ) -> None:
        self.pipeline, self.record, self.inputs = pipeline, record, inputs
        self.voice_reply = voice_reply  # replies are spoken too (response.audio events)
        self._admit = admit
        self.locale = locale  # for the safety layer's crisis resources
        self._emit, self._release = emit, release
        self._inbox: asyncio.Queue[UserTurn] = asyncio.Queue()
        self._turn: asyncio.Task[None] | None = None
        self._cancel_reason: Literal["cancel", "barge_in"] = "cancel"
        self.voice: VoiceInput | None = None
        self.voice_config = inputs.voice_config  # this session's; set_end_of_turn changes it
        self.frames: FrameInput | None = None
        self._closing: asyncio.Future[None] | None = None
        self._current: Turn | None = None
        # The last spoken reply: its id, its voice (sentence timings), the index of its message in history.
        self._spoken: tuple[str, SpokenReply, int | None] | None = None
        self._held: int | None = None  # an utterance begun while the agent spoke: a backchannel, or an interruption?
        self.erased = False  # the session or its user was erased: nothing more is saved, the connection ends
        # User messages held for answer(), by the edge's key, in arrival order: a client that asks for its replies
        # (the Realtime API's response.create) holds its typed items here, and its spoken turns when answer_speech
        # is off.
        self.waiting: dict[str, UserTurn] = {}
        self.answer_speech = True  # a spoken turn is answered when it ends; False: it waits in `waiting`
        self.interrupt_on_speech = True  # the user's speech stops the reply (barge-in); False: it plays on
        self._answer_when_heard = False  # answer() came while the utterance was still being transcribed
        self.tools: ToolUse = NO_TOOLS  # the functions offered to the model on this session's turns, and how
        self._paused: tuple[Paused, str] | None = None  # the turn waiting on its tool calls, and its user's text
        self.tool_timeout_s = TOOL_TIMEOUT_S
        # A spoken turn started at a pause, before its end was decided: (utterance id, its words, the gate that
        # releases it). Released when the turn ends on those words; discarded (cancelled, leaving nothing) when the
        # speaker goes on, or the words differ.
        self._speculation: tuple[int, str, asyncio.Event] | None = None
        self._tool_timer: asyncio.Task[None] | None = None  # gives the paused turn up when its outputs do not come
        self._worker = asyncio.create_task(self._run(), name=f"conversation-{record.id}")

    def started(self, resumed: bool, resume_token: str | None = None) -> SessionStarted:
        """The session.started event for this conversation: its stored history and the persona carried over."""
        rec = self.record
        history = tuple(
            {"role": m.role, "content": m.content, **({"interrupted": "true"} if m.interrupted else {})}
            for m in rec.history
        )
        return SessionStarted(
            session_id=rec.id,
            profile=rec.profile_id,
            resumed=resumed,
            history=history,
            persona=rec.persona.view() if rec.persona.turns else None,
            voice_reply=self.voice_reply,
            user_id=rec.user_id,
            resume_token=resume_token,
        )

    @property
    def busy(self) -> bool:
        """A reply is running, turns wait, or speech is being transcribed: the client is not idle."""
        return (
            (self._turn is not None and not self._turn.done())
            or not self._inbox.empty()
            or (self.voice is not None and self.voice.busy)
        )

    # --- input -------------------------------------------------------------------------------------------------------

    def submit_text(self, text: str, explain: bool = False) -> None:
        """Queue a user message; turns run in arrival order, none is dropped. `explain` attaches per-word
        attributions to the perception event. Raises InboxFull when MAX_PENDING_TURNS already wait."""
        self._queue(UserTurn(text, explain))

    def tool_result(self, call_id: str, output: str, take_up: bool = True) -> bool:
        """The output of a call the model made. When every call of the paused turn is answered, the turn is taken up
        again with them (True: it was queued); with `take_up` False it waits for answer() (the Realtime API's
        response.create). Raises UnknownCall, or InboxFull (the result is not taken: send it again)."""
        paused = self._paused
        if paused is None or call_id not in paused[0].waiting:
            raise UnknownCall(call_id)
        state, text = paused
        made = next(c for c in state.tools.calls if c.id == call_id)
        # taken up again after a forced call (required, or a named function), the model answers with its output; with
        # "auto" it may call again
        choice = state.tools.choice if state.tools.choice in ("auto", "none") else "none"
        results = (*state.tools.results, ToolResult(call_id, made.name, output))
        tools = replace(state.tools, choice=choice, results=results)
        state = replace(state, tools=tools)
        go = take_up and not state.waiting
        if go:
            self._take_up(state, text)
        else:
            self._paused = (state, text)
        return go

    def _take_up(self, state: Paused, text: str) -> None:
        """Queue the paused turn again, with the outputs of its calls. InboxFull leaves everything as it was."""
        self._queue(UserTurn(text, tools=state.tools, resumes=state))
        self._paused = None

    @property
    def _resumable(self) -> bool:
        """A paused turn has every output it waited for, and waits for answer()."""
        return self._paused is not None and not self._paused[0].waiting

    @property
    def waiting_calls(self) -> tuple[str, ...]:
        """The tool calls whose outputs the paused turn waits for."""
        return self._paused[0].waiting if self._paused is not None else ()

    def _queue(self, turn: UserTurn) -> None:
        if self._inbox.qsize() >= MAX_PENDING_TURNS:
            raise InboxFull(
                f"{MAX_PENDING_TURNS} messages are already waiting for a reply; this one was not queued, "
                "send it again once a reply is done"
            )
        self._inbox.put_nowait(turn)

    def hold(self, key: str, text: str) -> None:
        """Keep a typed user message for the next answer(), under the edge's key (its item id). Raises InboxFull
        when MAX_PENDING_TURNS messages already wait."""
        self._hold(key, UserTurn(text))

    def _hold(self, key: str, turn: UserTurn) -> None:
        if len(self.waiting) >= MAX_PENDING_TURNS and key not in self.waiting:
            raise InboxFull(f"{MAX_PENDING_TURNS} messages already wait for a response; this one was not kept")
        self.waiting[key] = turn

    @property
    def answerable(self) -> bool:
        """Something waits for answer(): held messages, or an utterance still being transcribed."""
        return bool(self.waiting) or self._resumable or (self.voice is not None and self.voice.busy)

    def answer(self) -> bool:
        """Answer every held message as one user turn (their texts in order, the prosody of the last spoken one).
        An utterance still being transcribed (the client committed it and asked for the response at once) is waited
        for: answered when its words are in. False: nothing was held or is being heard. Raises InboxFull as
        submit_text does (the messages stay held). With no message held, a turn paused on tool calls whose outputs
        are all in is taken up again."""
        if not self.waiting and self._resumable and self._paused is not None:
            self._take_up(*self._paused)
            return True
        if not self.waiting:
            self._answer_when_heard = self.answerable
            return self._answer_when_heard
        self._answer_when_heard = False
        held = list(self.waiting.values())
        voices = [t.voice for t in held if t.voice is not None]
        self._queue(
            UserTurn(
                "\n".join(t.text for t in held),
                explain=any(t.explain for t in held),
                voice=voices[-1] if voices else None,
            )
        )
        self.waiting.clear()
        return True

    def set_end_of_turn(self, mode: Literal["vad", "smart_turn", "manual"], silence_ms: int | None = None) -> None:
        """How this session's spoken turns end from now on (the server's VoiceConfig until then): see VoiceConfig."""
        changes: dict[str, object] = {"end_of_turn": mode}
        if mode != "manual":  # not given: the server's
            key = "vad_silence_ms" if mode == "vad" else "turn_max_silence_ms"
            changes[key] = silence_ms if silence_ms is not None else getattr(self.inputs.voice_config, key)
        self.voice_config = replace(self.voice_config, **changes)  # type: ignore[arg-type]
        if self.voice is not None:
            self.voice.configure(self.voice_config)

    def submit_audio(self, pcm16: bytes) -> None:
        """PCM16 mono 16 kHz bytes. Raises InvalidAudio, VoiceUnavailable, or AudioBackpressure (client sends too fast)."""
        samples = pcm16_to_float(pcm16)
        if self.voice is None:
            if self.inputs.voice is None:
                raise VoiceUnavailable("voice input is not enabled on this server")
            self.voice = VoiceInput(
                self.inputs.voice,
                self.voice_config,
                on_speech=self._on_speech,
                on_interim=self._on_interim,
                on_final=self._on_final,
                on_sustained=self._on_sustained,
                on_tentative=self._on_tentative,
                on_resumed=self._on_resumed,
            )
        self.voice.submit(samples)

    def end_of_utterance(self) -> None:
        if self.voice is not None:
            self.voice.end_of_utterance()

    def submit_image(self, data: bytes, explain: bool = False) -> None:
        """One camera frame (JPEG/PNG bytes), read in arrival order off the event loop. Raises FaceUnavailable, or
        ImageBackpressure past the per-session frame rate or when two frames are already waiting."""
        if self.frames is None:
            if self.inputs.face is None:
                raise FaceUnavailable("face input is not enabled on this server")
            self.frames = FrameInput(
                self.inputs.face,
                self._emit,
                self.inputs.face_max_fps,
                self.inputs.face_ttl_s,
                name=f"frames-{self.record.id}",
            )
        self.frames.submit(data, explain)

    def speaking(self) -> bool:
        """Is the user (presumably) hearing a spoken reply right now?"""
        now = time.perf_counter()
        cur = self._current
        if cur is not None and cur.spoken is not None and cur.spoken.playing(now):
            return True
        return self._spoken is not None and self._spoken[1].playing(now)

    async def _on_speech(self, utterance_id: int) -> None:
        await self._emit(SpeechStarted(utterance_id=utterance_id))
        if self.speaking():  # it may be "mm-hmm": wait for more speech (on_sustained) or for its words (on_final)
            self._held = utterance_id
            return
        await self._barge_in()  # the user talks over the reply: stop it

    async def _on_sustained(self, utterance_id: int) -> None:
        if self._held == utterance_id:  # longer than an acknowledgement: a real interruption
            self._held = None
            await self._barge_in()

    async def _barge_in(self) -> None:
        if not self.interrupt_on_speech:
            return
        if self.cancel("barge_in"):  # a reply still being written (or spoken): response.interrupted from _one
            return
        if self._spoken is not None and self._spoken[1].playing(time.perf_counter()):
            rid, spoken, idx = self._spoken  # written and sent, still playing: the client stops it and reports
            spoken.stopped = True
            text = self.record.history[idx].content if idx is not None else " ".join(s.text for s in spoken.sentences)
            await self._emit(ResponseInterrupted(response_id=rid, text=text))

    async def _on_interim(self, text: str, utterance_id: int) -> None:
        await self._emit(TranscriptEvent(utterance_id=utterance_id, text=text, final=False))

    async def _on_tentative(self, utt: Utterance, utterance_id: int) -> None:
        """The speaker paused and the end of the turn is undecided: answer the words so far now, unseen, if nothing
        else is running or waiting and no reply is playing (a pause in an interruption or a backchannel is not
        speculated on)."""
        if (
            not self.voice_config.speculate
            or not self.answer_speech
            or self.erased
            or self._speculation is not None
            or (self._turn is not None and not self._turn.done())
            or not self._inbox.empty()
            or self._held is not None
            or self.speaking()
        ):
            return
        gate = asyncio.Event()
        self._speculation = (utterance_id, utt.transcript.text, gate)
        SPECULATION.labels("started").inc()
        self._queue(UserTurn(utt.transcript.text, voice=utt.voice, gate=gate))

    async def _on_resumed(self, utterance_id: int) -> None:
        """The speaker went on after a pause: what was started on the words so far goes, unseen."""
        self._discard(utterance_id)

    def _discard(self, utterance_id: int) -> None:
        spec = self._speculation
        if spec is None or spec[0] != utterance_id:
            return
        self._speculation = None
        SPECULATION.labels("discarded").inc()
        if self._current is not None and self._current.gate is spec[2] and self._turn is not None:
            self._turn.cancel()  # still gated: it leaves nothing (see _one)
        else:  # not picked up yet: the worker drops it
            spec[2].set()

    def _let_through(self, utterance_id: int, text: str) -> bool:
        """The turn ended on the words a speculative turn started from: let it through. False: none matches."""
        spec = self._speculation
        if spec is None or spec[0] != utterance_id:
            return False
        if spec[1] != text:
            self._discard(utterance_id)
            return False
        self._speculation = None
        SPECULATION.labels("released").inc()
        spec[2].set()
        return True

    async def _on_final(self, utt: Utterance | None, utterance_id: int) -> None:
        held = self._held == utterance_id
        if held:
            self._held = None
        if utt is None:
            self._discard(utterance_id)
            await self._emit(TranscriptEvent(utterance_id=utterance_id, text="", final=True))
            await self._nothing_heard()
            return
        t = utt.transcript
        ack = held and backchannel(t.text)  # "mm-hmm" while the agent spoke: heard, not a turn, no interruption
        await self._emit(
            TranscriptEvent(
                utterance_id=utterance_id,
                text=t.text,
                final=True,
                duration_s=round(t.duration_s, 3),
                latency_ms=round(t.latency_ms, 1),
                model=t.model,
                backchannel=ack,
            )
        )
        if ack or not t.text or not self.answer_speech:
            self._discard(utterance_id)
        if ack:
            return
        if not t.text:
            await self._nothing_heard()
            return
        if held:  # said over the reply and more than an acknowledgement
            await self._barge_in()
        if not self.answer_speech:  # held for the client's request (which draws on the key's rate then)
            try:
                self._hold(f"utterance-{utterance_id}", UserTurn(t.text, voice=utt.voice))
                if self._answer_when_heard:
                    self.answer()
            except InboxFull as exc:
                await self._emit(ErrorEvent(code="queue_full", message=str(exc), retryable=True))
            return
        # A spoken turn counts against the key's rate like a typed one; refused, its transcript above still has it.
        if self._admit is not None and not await self._admit():
            self._discard(utterance_id)
            await self._emit(
                ErrorEvent(
                    code="rate_limited",
                    retryable=True,
                    message="rate limit reached: this spoken "
                    f"turn (utterance {utterance_id}) was transcribed but not answered",
                )
            )
            return
        if self._let_through(utterance_id, t.text):
            return  # answered already, from the pause on
        try:
            self._queue(UserTurn(t.text, voice=utt.voice))
        except InboxFull as exc:
            await self._emit(ErrorEvent(code="queue_full", message=str(exc), retryable=True))

    async def _nothing_heard(self) -> None:
        """An utterance with no words: if the client asked for its answer, say there is nothing to answer."""
        if self._answer_when_heard and not self.waiting:
            self._answer_when_heard = False
            await self._emit(
                ErrorEvent(code="no_input", message="nothing was said in that audio: there is nothing to answer")
            )

    async def audio_played(self, response_id: str, ms: float, interrupted: bool) -> bool:
        """The client's playback report on the last spoken reply. Interrupted: history keeps the words heard in the
        first `ms` of its audio (sentence timings), marked interrupted. False: not the last spoken reply."""
        cur = self._current
        if cur is not None and cur.spoken is not None and cur.reply.id == response_id:
            if not interrupted:
                return True
            self.cancel("barge_in")  # stopped while it is still being written: stop it, then keep what was heard
            if self._turn is not None:
                await asyncio.wait({self._turn})
        if self._spoken is None or self._spoken[0] != response_id:
            return False
        rid, spoken, idx = self._spoken
        spoken.stopped = True
        if not interrupted:
            return True
        text = heard_text(spoken.sentences, ms)
        if idx is not None and idx < len(self.record.history) and self.record.history[idx].role == "assistant":
            self.record.history[idx] = Message("assistant", text, interrupted=True)
            await self.pipeline.store.save(self.record, rewrite=idx)
        await self._emit(ResponseAudioTruncated(response_id=rid, ms=ms, text=text))
        return True

    def replay(self, assistant: str) -> None:
        """An earlier turn a client replays from its own record: the held user messages, then the reply they got,
        become history (stored with the next save); nothing is answered."""
        users = [Message("user", t.text) for t in self.waiting.values()]
        self.waiting.clear()
        self.record.history.extend([*users, Message("assistant", assistant)])

    async def override(self, controls: dict[str, object]) -> None:
        profile = self.pipeline.profiles[self.record.profile_id]
        applied, rejected = apply_overrides(controls, profile.limits)
        self.record.overrides.update(applied)
        await self.pipeline.store.save(self.record)
        await self._emit(ControlsUpdated(overrides=dict(self.record.overrides), rejected=rejected))

    # --- turns -------------------------------------------------------------------------------------------------------

    def cancel(self, reason: Literal["cancel", "barge_in"] = "cancel") -> bool:
        """Stop the reply being generated now. False when none is running (a speculative turn not yet released is
        not a reply: it is discarded or released by the end of its utterance)."""
        if self._current is not None and self._current.tentative:
            return False
        if self._turn is not None and not self._turn.done():
            self._cancel_reason = reason
            self._turn.cancel()
            return True
        return False

    async def _run(self) -> None:
        while True:
            user = await self._inbox.get()
            self._cancel_reason = "cancel"
            self._turn = asyncio.create_task(self._one(user), name=f"turn-{self.record.id}")
            await asyncio.wait({self._turn})  # a cancelled turn ends here without cancelling the worker
            if not self._turn.cancelled() and isinstance(self._turn.exception(), SessionErased):
                await self.erase()  # erased by another connection or worker while this one was live
                return
            if not self._turn.cancelled() and (exc := self._turn.exception()) is not None:
                log.exception("turn failed", exc_info=exc)
                await self._emit(
                    ErrorEvent(code="internal_error", message="the turn failed unexpectedly", retryable=True)
                )

    async def _one(self, user: UserTurn) -> None:
        """A cancel at any point is answered with response.cancelled (or .interrupted on barge-in) carrying what had
        been sent, which history keeps. A new message gives up the calls a paused turn waited on; a turn that calls
        tools pauses until their outputs come back (tool_result)."""
        if user.gate is not None and (self._speculation is None or self._speculation[2] is not user.gate):
            return  # a speculative turn discarded before it began
        if user.resumes is None:
            self._paused = None
            user = replace(user, tools=self.tools)
        turn = Turn(
            self.pipeline,
            self.record,
            user,
            self.frames.fresh() if self.frames else None,
            self.locale,
            speak=self.voice_reply,
            gate=user.gate,
        )
        self._current = turn
        try:
            noted = False
            async with aclosing(turn.run()) as events:
                async for each in events:
                    if turn.paused is not None and not noted:
                        noted = True
                        self._pause(turn.paused, user.text)  # before its calls reach the client, who may answer
                    await self._emit(each)
        except asyncio.CancelledError:
            if turn.tentative:  # discarded before its gate: nothing of it was shown, kept or stored
                raise
            if (failed := await turn.cut_short()) is not None:
                await self._emit(failed)
            event = ResponseInterrupted if self._cancel_reason == "barge_in" else ResponseCancelled
            await self._emit(event(response_id=turn.reply.id, text=turn.reply.text))
            raise
        finally:
            self._current = None
            if turn.spoken is not None:
                h = self.record.history
                idx = len(h) - 1 if h and h[-1].role == "assistant" else None
                self._spoken = (turn.reply.id, turn.spoken, idx)

    def _pause(self, paused: Paused, text: str) -> None:
        """The turn waits for the outputs of its calls (tool_result), for tool_timeout_s at most."""
        self._paused = (paused, text)
        if self._tool_timer is not None:
            self._tool_timer.cancel()  # an earlier paused turn's: that turn was taken up or given up
        self._tool_timer = asyncio.create_task(self._give_up(paused), name=f"tools-{self.record.id}")

    async def _give_up(self, paused: Paused) -> None:
        """The outputs of a paused turn's calls did not all come within tool_timeout_s: the turn ends, and the client
        is told which calls went unanswered (its message stays in history; sending it again starts a new turn)."""
        await asyncio.sleep(self.tool_timeout_s)
        if self._paused is None or self._paused[0].number != paused.number or self._paused[0].at != paused.at:
            return  # taken up again, or given up for a new message
        waiting = list(self._paused[0].waiting) or [c.id for c in self._paused[0].tools.calls]
        self._paused = None
        await self._emit(
            ErrorEvent(
                code="tool_timeout",
                retryable=False,
                message=f"no output came for the tool call(s) {waiting} within {self.tool_timeout_s:g} s: the reply "
                "that called them was given up; a tool.result for them now is refused",
            )
        )

    # --- close -------------------------------------------------------------------------------------------------------

    async def erase(self) -> None:
        """The session (or its user) was erased: stop, save nothing more, and tell the client, whose connection ends.
        Called by the agent on erasure here, or by the turn that found its session erased elsewhere."""
        if self.erased:
            return
        self.erased = True
        if self._speculation is not None:
            self._discard(self._speculation[0])
        self.cancel()
        await self._emit(
            ErrorEvent(
                code="session_erased",
                retryable=False,
                message="this session's data was erased; the conversation has ended and nothing more of it is stored",
            )
        )

    async def close(self) -> None:
        """Idempotent, and every caller waits for the one closing to finish: a conversation taken over by another
        connection is closed (and saved) once, before the new connection loads the record, and never saves again."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self.voice is not None:
            await self.voice.aclose()
        if self.frames is not None:
            await self.frames.aclose()
        await cancel_and_wait(self._turn, self._worker, self._tool_timer)
        try:
            if not self.erased:
                await self.pipeline.store.save(self.record)
        except SessionErased:
            log.info("session %s was erased while live; not written back", self.record.id)
        except Exception:  # the connection is ending; nothing more can be reported to it
            log.exception("store failed while closing session %s; its last changes are lost", self.record.id)
        finally:
            self._release(self)
