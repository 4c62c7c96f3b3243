"""One live conversation: a queue of user turns, run one at a time through the pipeline, cancellable."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import openai

from agent.events import (
    ControlsEvent, ControlsUpdated, ErrorEvent, Event, PerceptionEvent, PersonaEvent, ResponseCancelled,
    ResponseDelta, ResponseDone,
)
from agent.llm import StreamStats
from agent.store import SessionRecord
from perception import LABELS, ModalitySignal
from persona import apply_overrides, read_style
from prompts import Message, render

if TYPE_CHECKING:
    from agent.agent import Agent

log = logging.getLogger(__name__)
Emit = Callable[[Event], Awaitable[None]]


class Conversation:
    """Owns its worker task and the running turn; `close()` cancels both (and with them the LLM stream)."""

    def __init__(self, agent: Agent, record: SessionRecord, emit: Emit) -> None:
        self.agent = agent
        self.record = record
        self._emit = emit
        self._inbox: asyncio.Queue[str] = asyncio.Queue()
        self._turn: asyncio.Task[None] | None = None
        self._worker = asyncio.create_task(self._run(), name=f"conversation-{record.id}")

    @property
    def busy(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def submit_text(self, text: str) -> None:
        """Queue a user message; turns run in arrival order, none is dropped."""
        self._inbox.put_nowait(text)

    def cancel(self) -> bool:
        """Stop the reply being generated now. False when none is running."""
        if self.busy:
            assert self._turn is not None
            self._turn.cancel()
            return True
        return False

    async def override(self, controls: dict[str, object]) -> None:
        profile = self.agent.profile(self.record.profile_id)
        applied, rejected = apply_overrides(controls, profile.limits)
        self.record.overrides.update(applied)
        await self.agent.store.save(self.record)
        await self._emit(ControlsUpdated(overrides=dict(self.record.overrides), rejected=rejected))

    async def close(self) -> None:
        for task in (self._turn, self._worker):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(*(t for t in (self._turn, self._worker) if t is not None), return_exceptions=True)
        await self.agent.store.save(self.record)

    async def _run(self) -> None:
        while True:
            text = await self._inbox.get()
            self._turn = asyncio.create_task(self._text_turn(text), name=f"turn-{self.record.id}")
            await asyncio.wait({self._turn})  # a cancelled turn ends here without cancelling the worker
            if not self._turn.cancelled() and (exc := self._turn.exception()) is not None:
                log.exception("turn failed", exc_info=exc)
                await self._emit(ErrorEvent(code="internal_error", message="the turn failed unexpectedly", retryable=True))

    async def _text_turn(self, text: str) -> None:
        agent, rec = self.agent, self.record
        t0 = time.perf_counter()
        signal: ModalitySignal = await agent.perceive_text(text)
        t_perc = time.perf_counter()
        await self._emit(PerceptionEvent(
            modality=signal.modality, emotions=signal.emotions, top=signal.top, confidence=round(signal.confidence, 4),
            valence=round(signal.valence_arousal[0], 4), arousal=round(signal.valence_arousal[1], 4),
            model=signal.model, latency_ms=round(signal.latency_ms, 3), evidence=dict(signal.evidence),
        ))
        signals = {signal.modality: signal}
        t1 = time.perf_counter()
        percept = agent.fusion.fuse(signals)
        t_fus = time.perf_counter()
        conf = sum(percept.gates[m] * signals[m].confidence for m in percept.present)
        rec.persona = agent.tracker.update(rec.persona, percept, read_style(text), conf, time.time())
        profile = agent.profile(rec.profile_id)
        decision = agent.policy.decide(rec.persona, profile.base, rec.overrides, profile.limits)
        prompt = render(profile, decision.controls, agent.window(rec.history), text,
                        max_tokens_cap=agent.config.max_tokens_cap, temperature=agent.config.temperature)
        t_pol = time.perf_counter()
        await self._emit(PersonaEvent(state=rec.persona.as_dict(), gates=dict(percept.gates),
                                      present=percept.present, fusion_model=percept.model))
        rules = tuple({"rule": f.rule, "inputs": dict(f.inputs), "set": dict(f.set), "why": f.why} for f in decision.fired)
        await self._emit(ControlsEvent(controls=decision.controls.as_dict(), sampling=prompt.sampling.as_dict(),
                                       rules_fired=rules, overridden=dict(decision.overridden),
                                       rejected_overrides=dict(decision.rejected_overrides)))
        # The user's message is stored before the LLM is called: a failed or cancelled reply loses nothing.
        rec.history.append(Message("user", text))
        await agent.store.save(rec)

        response_id = uuid.uuid4().hex[:12]
        parts: list[str] = []
        stats = StreamStats()
        t_req = time.perf_counter()
        t_first: float | None = None
        try:
            async for delta in agent.llm.stream(prompt, stats):
                if t_first is None:
                    t_first = time.perf_counter()
                parts.append(delta)
                await self._emit(ResponseDelta(response_id=response_id, text=delta))
        except asyncio.CancelledError:
            self._remember_reply("".join(parts), interrupted=True)
            await agent.store.save(rec)
            await self._emit(ResponseCancelled(response_id=response_id, text="".join(parts)))
            raise
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            await self._emit(ErrorEvent(code="llm_unavailable", message=f"the language model did not answer: {type(exc).__name__}", retryable=True))
            return
        except openai.APIStatusError as exc:
            await self._emit(ErrorEvent(code="llm_error", message=f"the language model answered HTTP {exc.status_code}", retryable=exc.status_code >= 500))
            return
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
            "llm_total": ms(t_req, t_end),
            "total": ms(t0, t_end),
        }
        top = sorted(zip(LABELS, signal.distribution.tolist()), key=lambda kv: -kv[1])[:3]
        explanation = {
            "perceived": {signal.modality: {k: round(v, 3) for k, v in top}},
            "gates": dict(percept.gates),
            "present": list(percept.present),
            "persona": rec.persona.as_dict(),
            "rules_fired": [r["rule"] for r in rules],
            "why": [r["why"] for r in rules],
            "controls": decision.controls.as_dict(),
            "sampling": prompt.sampling.as_dict(),
            "summary": _summary(signal, rec.persona.dominant_emotion, decision.controls.strategy, [r["rule"] for r in rules]),
        }
        await self._emit(ResponseDone(
            response_id=response_id, text=reply, finish_reason=stats.finish_reason,
            usage={"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens},
            timings_ms=timings, explanation=explanation,
        ))

    def _remember_reply(self, text: str, interrupted: bool) -> None:
        if text or interrupted:
            self.record.history.append(Message("assistant", text, interrupted=interrupted))


def _summary(signal: ModalitySignal, dominant: str, strategy: str, rules: list[str]) -> str:
    fired = ", ".join(rules) if rules else "none"
    return (f"Your message read as mostly {signal.top} ({signal.model}); over the conversation you seem {dominant}. "
            f"Rules fired: {fired}; so the reply used the strategy '{strategy}'.")
