"""One live conversation: a queue of user turns, run one at a time through the pipeline, cancellable."""
from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal


import httpx
import openai

from agent.events import (
    ControlsEvent, ControlsUpdated, ErrorEvent, Event, FaceAbsent, PerceptionEvent, PersonaEvent, ResponseCancelled,
    ResponseDelta, ResponseDone, ResponseInterrupted, SafetyEvent, SpeechStarted, TranscriptEvent,
)
from agent.voice import Utterance, VoiceInput
from perception.voice.audio import pcm16_to_float
from agent.llm import StreamStats
from agent.metrics import LLM_TOKENS, SAFETY, TURNS, observe_timings
from agent.store import SessionRecord
from perception import LABELS, ModalitySignal
from perception.face.image import ImageError
from persona import RiskInput, apply_overrides, read_style
from prompts import Message, crisis_reply, render
from prompts.endings import SentenceCloser
from prompts.guard import OutputGuard

if TYPE_CHECKING:
    from agent.agent import Agent

log = logging.getLogger(__name__)
LLM_RETRY_BACKOFF_S = (0.5, 1.5)  # waits before the 2nd and 3rd attempt
Emit = Callable[[Event], Awaitable[None]]
Evict = Callable[[], Awaitable[None]]  # tells the connection its session was taken over, and closes it


@dataclass(frozen=True, slots=True)
class UserTurn:
    text: str
    explain: bool = False
    voice: ModalitySignal | None = None  # prosody of the utterance the text was transcribed from


class VoiceUnavailable(RuntimeError):
    pass


class ImageBackpressure(RuntimeError):
    """Camera frames arrive faster than the session's limit; this one was refused (and said so), not queued."""


@dataclass(frozen=True, slots=True)
class _Frame:
    data: bytes
    explain: bool


class Conversation:
    """Owns its worker task and the running turn; `close()` cancels both (and with them the LLM stream)."""

    def __init__(self, agent: Agent, record: SessionRecord, emit: Emit) -> None:
        self.agent = agent
        self.record = record
        self._emit = emit
        self._inbox: asyncio.Queue[UserTurn] = asyncio.Queue()
        self._turn: asyncio.Task[None] | None = None
        self._cancel_reason: Literal["cancel", "barge_in"] = "cancel"
        self.voice: VoiceInput | None = None
        self.locale: str | None = None  # for the safety layer's crisis resources
        self._frames: asyncio.Queue[_Frame] = asyncio.Queue(maxsize=2)
        self._frame_worker: asyncio.Task[None] | None = None
        self._frame_allowance = 2.0  # token bucket: face_max_fps per second, burst 2
        self._frame_clock = time.monotonic()
        self._face: tuple[ModalitySignal, float] | None = None  # latest face reading, monotonic time
        self._closing: asyncio.Future[None] | None = None
        self._worker = asyncio.create_task(self._run(), name=f"conversation-{record.id}")

    @property
    def busy(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def submit_text(self, text: str, explain: bool = False) -> None:
        """Queue a user message; turns run in arrival order, none is dropped. `explain` attaches per-word
        attributions to the perception event."""
        self._inbox.put_nowait(UserTurn(text, explain))

    def submit_audio(self, pcm16: bytes) -> None:
        """PCM16 mono 16 kHz bytes. Raises InvalidAudio, VoiceUnavailable, or AudioBackpressure (client sends too fast)."""
        samples = pcm16_to_float(pcm16)
        if self.voice is None:
            models = self.agent.voice_models
            if models is None:
                raise VoiceUnavailable("voice input is not enabled on this server")
            self.voice = VoiceInput(models, self.agent.config.voice, on_speech=self._on_speech,
                                    on_interim=self._on_interim, on_final=self._on_final)
        self.voice.submit(samples)

    def submit_image(self, data: bytes, explain: bool = False) -> None:
        """One camera frame (JPEG/PNG bytes), read in arrival order off the event loop. Raises ImageBackpressure
        past the per-session frame rate or when two frames are already waiting."""
        now = time.monotonic()
        rate = self.agent.config.face_max_fps
        self._frame_allowance = min(2.0, self._frame_allowance + (now - self._frame_clock) * rate)
        self._frame_clock = now
        if self._frame_allowance < 1.0 or self._frames.full():
            raise ImageBackpressure(f"camera frames are limited to {rate:g} per second per session; frame refused")
        self._frame_allowance -= 1.0
        self._frames.put_nowait(_Frame(data, explain))
        if self._frame_worker is None:
            self._frame_worker = asyncio.create_task(self._read_frames(), name=f"frames-{self.record.id}")

    async def _read_frames(self) -> None:
        while True:
            frame = await self._frames.get()
            try:
                sig, ms = await self.agent.perceive_image(frame.data, frame.explain)
            except ImageError as exc:
                await self._emit(ErrorEvent(code=exc.code, message=str(exc), retryable=False))
                continue
            except Exception:
                log.exception("face perception failed")
                await self._emit(ErrorEvent(code="face_failed", message="the face model failed on that frame", retryable=True))
                continue
            if sig is None:
                await self._emit(FaceAbsent(latency_ms=round(ms, 3), model=self.agent.face.name if self.agent.face else ""))
                continue
            self._face = (sig, time.monotonic())
            await self._emit(_perception_event(sig, dict(sig.evidence)))

    def fresh_face(self) -> ModalitySignal | None:
        if self._face is None or time.monotonic() - self._face[1] > self.agent.config.face_ttl_s:
            return None
        return self._face[0]

    def end_of_utterance(self) -> None:
        if self.voice is not None:
            self.voice.end_of_utterance()

    def cancel(self, reason: Literal["cancel", "barge_in"] = "cancel") -> bool:
        """Stop the reply being generated now. False when none is running."""
        if self.busy:
            assert self._turn is not None
            self._cancel_reason = reason
            self._turn.cancel()
            return True
        return False

    async def _on_speech(self, utterance_id: int) -> None:
        await self._emit(SpeechStarted(utterance_id=utterance_id))
        self.cancel("barge_in")  # the user talks over the reply: stop it

    async def _on_interim(self, text: str, utterance_id: int) -> None:
        await self._emit(TranscriptEvent(utterance_id=utterance_id, text=text, final=False))

    async def _on_final(self, utt: Utterance | None, utterance_id: int) -> None:
        if utt is None:
            await self._emit(TranscriptEvent(utterance_id=utterance_id, text="", final=True))
            return
        t = utt.transcript
        await self._emit(TranscriptEvent(utterance_id=utterance_id, text=t.text, final=True, duration_s=round(t.duration_s, 3),
                                         latency_ms=round(t.latency_ms, 1), model=t.model))
        if t.text:
            self._inbox.put_nowait(UserTurn(t.text, voice=utt.voice))

    async def override(self, controls: dict[str, object]) -> None:
        profile = self.agent.profile(self.record.profile_id)
        applied, rejected = apply_overrides(controls, profile.limits)
        self.record.overrides.update(applied)
        await self.agent.store.save(self.record)
        await self._emit(ControlsUpdated(overrides=dict(self.record.overrides), rejected=rejected))

    async def close(self) -> None:
        """Idempotent, and every caller waits for the one closing to finish: a conversation taken over by another
        connection is closed (and saved) once, before the new connection loads the record, and never saves again."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self.voice is not None:
            await self.voice.aclose()
        tasks = [t for t in (self._turn, self._worker, self._frame_worker) if t is not None]
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.agent.store.save(self.record)
        finally:
            self.agent.release(self)

    async def _run(self) -> None:
        while True:
            turn = await self._inbox.get()
            self._cancel_reason = "cancel"
            self._turn = asyncio.create_task(self._user_turn(turn), name=f"turn-{self.record.id}")
            await asyncio.wait({self._turn})  # a cancelled turn ends here without cancelling the worker
            if not self._turn.cancelled() and (exc := self._turn.exception()) is not None:
                log.exception("turn failed", exc_info=exc)
                await self._emit(ErrorEvent(code="internal_error", message="the turn failed unexpectedly", retryable=True))

    async def _user_turn(self, turn: UserTurn) -> None:
        """Store the message first, then perceive → fuse → decide → stream. A cancel at any point is answered with
        response.cancelled (or .interrupted on barge-in) carrying what had been sent, which history keeps."""
        rec = self.record
        rec.history.append(Message("user", turn.text))
        await self.agent.store.save(rec)
        response_id = uuid.uuid4().hex[:12]
        parts: list[str] = []
        try:
            await self._respond(turn, response_id, parts)
        except asyncio.CancelledError:
            self._remember_reply("".join(parts), interrupted=True)
            await self.agent.store.save(rec)
            event = ResponseInterrupted if self._cancel_reason == "barge_in" else ResponseCancelled
            await self._emit(event(response_id=response_id, text="".join(parts)))
            raise

    async def _respond(self, turn: UserTurn, response_id: str, parts: list[str]) -> None:
        agent, rec = self.agent, self.record
        text = turn.text
        t0 = time.perf_counter()
        signals: dict[str, ModalitySignal] = {}
        signal: ModalitySignal | None = None
        try:
            signal = await agent.perceive_text(text)
        except Exception:  # a perceiver failing must not cost the user their reply: go on without that modality
            log.exception("text perception failed")
            await self._emit(ErrorEvent(code="perception_failed", retryable=False,
                                        message="the text emotion model failed on this message; the reply goes on without it"))
        t_perc = time.perf_counter()
        evidence: dict[str, object] = {}
        if signal is not None:
            evidence = dict(signal.evidence)
            if turn.explain and (attributions := await agent.explain_text(text)) is not None:
                evidence["attributions"] = attributions
            signals["text"] = signal
        if turn.voice is not None:
            signals["voice"] = turn.voice
        for sig in signals.values():
            await self._emit(_perception_event(sig, evidence if sig is signal else dict(sig.evidence)))
        if (face := self.fresh_face()) is not None:  # already announced when its frame arrived
            signals["face"] = face
        risk = await agent.assess_risk(text, signal)
        if risk.risk:
            # For the operator: the event names level, score and rule, never the message; logs carry no content either.
            action = "crisis_reply" if risk.level == "crisis" else "caution_prompt"
            log.warning("safety layer: %s in session %s (score %.3f, rule %s)", action, rec.id, risk.score, bool(risk.rule))
            SAFETY.labels(action).inc()
            await self._emit(SafetyEvent(risk=True, level=risk.level, score=risk.score, rule=risk.rule, action=action,
                                         model=agent.risk_model_name))
        t1 = time.perf_counter()
        percept = agent.fusion.fuse(signals)
        t_fus = time.perf_counter()
        conf = sum(percept.gates[m] * signals[m].confidence for m in percept.present)
        rec.persona = agent.tracker.update(rec.persona, percept, read_style(text), conf, time.time())
        profile = agent.profile(rec.profile_id)
        decision = agent.policy.decide(rec.persona, profile.base, rec.overrides, profile.limits,
                                       RiskInput(level=risk.level, score=risk.score, rule=risk.rule))
        recent, summary = agent.context(rec, rec.history[:-1])
        prompt = render(profile, decision.controls, recent, text, summary=summary,
                        max_tokens_cap=agent.config.max_tokens_cap, temperature=agent.config.temperature)
        t_pol = time.perf_counter()
        await agent.store.save(rec)  # the persona this turn produced is kept even if the reply never completes
        await self._emit(PersonaEvent(state=rec.persona.as_dict(), gates=dict(percept.gates),
                                      present=percept.present, fusion_model=percept.model))
        rules = tuple({"rule": f.rule, "inputs": dict(f.inputs), "set": dict(f.set), "why": f.why} for f in decision.fired)
        await self._emit(ControlsEvent(controls=decision.controls.as_dict(), sampling=prompt.sampling.as_dict(),
                                       rules_fired=rules, overridden=dict(decision.overridden),
                                       rejected_overrides=dict(decision.rejected_overrides)))
        stats = StreamStats()
        t_req = time.perf_counter()
        t_first: float | None = None  # the model's first token
        t_shown: float | None = None  # the first text the user saw (the output guard holds a short tail back)
        guard = OutputGuard()
        closer = SentenceCloser(prompt.sampling.max_tokens)
        attempt = 0
        crisis = decision.controls.safety_mode == "crisis"
        model = "fixed:crisis_reply" if crisis else agent.llm.config.model
        while True:
            try:
                if crisis:  # never left to the model's improvisation
                    stream = _fixed(crisis_reply(self.locale or profile.safety_locale), stats)
                else:
                    stream = agent.llm.stream(prompt, stats)
                async with aclosing(stream):  # leaving early (guard hit, cancel) closes the LLM request
                    async for delta in stream:
                        if t_first is None:
                            t_first = time.perf_counter()
                        if (safe := closer.feed(guard.feed(delta))):
                            t_shown = t_shown or time.perf_counter()
                            parts.append(safe)
                            await self._emit(ResponseDelta(response_id=response_id, text=safe))
                        if guard.hit is not None:
                            break
                        if closer.stop:  # a sentence ended close to the token cap: end the reply on it
                            stats.finish_reason = "sentence_end"
                            stats.completion_tokens = closer.tokens  # the stream ends before vLLM's usage chunk
                            break
                break
            except (openai.APIConnectionError, openai.APITimeoutError, openai.APIStatusError, httpx.HTTPError) as exc:
                status = getattr(exc, "status_code", None)
                transient = status is None or status >= 500 or status == 429
                # Retry only while the user has seen nothing of this reply: then a retry cannot repeat or garble it.
                if transient and not parts and attempt < len(LLM_RETRY_BACKOFF_S):
                    log.warning("LLM call failed (%s); retry %d in %.1f s", type(exc).__name__, attempt + 1,
                                LLM_RETRY_BACKOFF_S[attempt])
                    await asyncio.sleep(LLM_RETRY_BACKOFF_S[attempt])
                    attempt += 1
                    guard, t_first, stats = OutputGuard(), None, StreamStats()
                    closer = SentenceCloser(prompt.sampling.max_tokens)
                    continue
                await self._llm_failed(exc, status, parts)
                return
        if guard.hit is not None:
            tail = guard.hit.replacement
        elif closer.stop:
            tail = ""  # what the guard still held lies after the sentence the reply ended on
        else:
            tail = closer.feed(guard.finish(), tokens=0) + closer.finish(stats.finish_reason)
        if tail:
            t_shown = t_shown or time.perf_counter()
            parts.append(tail)
            await self._emit(ResponseDelta(response_id=response_id, text=tail))
        if guard.hit is not None:
            stats.finish_reason = "output_guard"
            log.warning("output guard: %s reply blocked in session %s", guard.hit.kind, rec.id)
            SAFETY.labels("output_blocked").inc()
            await self._emit(SafetyEvent(risk=True, level="caution", score=1.0, rule=guard.hit.kind,
                                         action="output_blocked", model="output-guard"))
        t_end = time.perf_counter()
        reply = "".join(parts)
        self._remember_reply(reply, interrupted=False)
        await agent.store.save(rec)
        ms = lambda a, b: round((b - a) * 1000, 3)  # noqa: E731
        timings = {
            "perception": ms(t0, t_perc),
            "fusion": ms(t1, t_fus),
            "policy": ms(t_fus, t_pol),
            "overhead_before_llm": ms(t0, t_req),
            "llm_first_token": ms(t_req, t_first) if t_first is not None else None,
            "first_delta": ms(t_req, t_shown) if t_shown is not None else None,
            "llm_total": ms(t_req, t_end),
            "total": ms(t0, t_end),
        }
        explanation = {
            "perceived": {m: {k: round(v, 3) for k, v in sorted(zip(LABELS, s.distribution.tolist()), key=lambda kv: -kv[1])[:3]}
                          for m, s in signals.items()},
            "gates": dict(percept.gates),
            "present": list(percept.present),
            "persona": rec.persona.as_dict(),
            "rules_fired": [r["rule"] for r in rules],
            "why": [r["why"] for r in rules],
            "controls": decision.controls.as_dict(),
            "sampling": prompt.sampling.as_dict(),
            "safety": {"level": risk.level, "score": risk.score, "rule": risk.rule},
            "summary": _summary(signals, rec.persona.dominant_emotion, decision.controls.strategy, [r["rule"] for r in rules]),
        }
        observe_timings(timings)
        TURNS.labels("safety_reply" if stats.finish_reason == "safety" else "done").inc()
        for kind, n in (("prompt", stats.prompt_tokens), ("completion", stats.completion_tokens)):
            if n:
                LLM_TOKENS.labels(kind).inc(n)
        await self._emit(ResponseDone(
            response_id=response_id, text=reply, finish_reason=stats.finish_reason, model=model,
            usage={"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens},
            timings_ms=timings, explanation=explanation,
        ))

    async def _llm_failed(self, exc: Exception, status: int | None, parts: list[str]) -> None:
        """The LLM failed for good on this turn. The user's message is already stored; a reply cut mid-way is kept
        as interrupted. The error says whether sending the message again may work."""
        TURNS.labels("llm_failed").inc()
        if parts:
            self._remember_reply("".join(parts), interrupted=True)
            await self.agent.store.save(self.record)
            await self._emit(ErrorEvent(code="llm_interrupted", retryable=True,
                                        message=f"the language model's stream broke off mid-reply ({type(exc).__name__})"))
        elif status is not None:
            await self._emit(ErrorEvent(code="llm_error", message=f"the language model answered HTTP {status}",
                                        retryable=status >= 500 or status == 429))
        else:
            await self._emit(ErrorEvent(code="llm_unavailable", retryable=True,
                                        message=f"the language model did not answer: {type(exc).__name__}"))

    def _remember_reply(self, text: str, interrupted: bool) -> None:
        if text or interrupted:
            self.record.history.append(Message("assistant", text, interrupted=interrupted))


def _perception_event(sig: ModalitySignal, evidence: dict[str, object]) -> PerceptionEvent:
    v, a = sig.valence_arousal
    return PerceptionEvent(modality=sig.modality, emotions=sig.emotions, top=sig.top, confidence=round(sig.confidence, 4),
                           valence=round(v, 4), arousal=round(a, 4), model=sig.model, latency_ms=round(sig.latency_ms, 3),
                           evidence=evidence)


async def _fixed(text: str, stats: StreamStats):
    stats.finish_reason = "safety"
    yield text


def _summary(signals: dict[str, ModalitySignal], dominant: str, strategy: str, rules: list[str]) -> str:
    fired = ", ".join(rules) if rules else "none"
    read = "; ".join(f"your {m} read as mostly {s.top}" for m, s in signals.items())
    return (f"This turn {read}; over the conversation you seem {dominant}. "
            f"Rules fired: {fired}; so the reply used the strategy '{strategy}'.")
