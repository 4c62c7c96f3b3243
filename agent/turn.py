"""One user turn, top to bottom: perceive → screen → fuse → track → decide → render → generate → guard → persist.

Each stage is a small function over typed values. `Turn.run` calls them in order and yields the events the client sees;
`Conversation` (the session's lifecycle) runs one turn at a time and cancels it on barge-in or response.cancel, reading
`Turn.reply` for what had been sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

import numpy as np

from agent.batcher import MicroBatcher
from agent.events import (
    ControlsEvent,
    ErrorEvent,
    Event,
    Explanation,
    PerceptionEvent,
    PersonaEvent,
    ResponseDelta,
    ResponseDone,
    ResponseToolCall,
    SafetyEvent,
    SafetyReading,
    Timings,
    Usage,
)
from agent.frames import perception_event
from agent.llm import TRANSPORT_ERRORS, LLMClient, LLMStatusError, StreamStats
from agent.metrics import LLM_TOKENS, SAFETY, STORE_FAILURES, TURNS, observe_timings
from agent.reading import TextReader, TextReading
from agent.sessions.store import SessionErased, SessionRecord, SessionStore
from agent.tasks import cancel_and_wait
from agent.tts import SpokenReply, Synthesizer
from agent.webhook import SafetyWebhook
from fusion import FusedPercept
from perception import LABELS, Modality, ModalitySignal
from perception.language import LanguageGuess
from perception.safety import RiskAssessment, positive_message, rules_only
from persona import (
    Decision,
    Moment,
    PersonaState,
    PersonaTracker,
    Policy,
    RiskInput,
    StrategyChooser,
    chooser_features,
    read_style,
)
from prompts import (
    AgentProfile,
    ControlsAt,
    Message,
    Prompt,
    crisis_reply,
    fit_context,
    points_to_support,
    render,
    safety_resources,
    support_note,
    token_bound,
)
from prompts.endings import SentenceCloser
from prompts.guard import GuardHit, OutputGuard
from prompts.tools import NO_TOOLS, ToolCall, ToolUse

log = logging.getLogger(__name__)
LLM_RETRY_BACKOFF_S = (0.5, 1.5)  # waits before the 2nd and 3rd attempt
# an error status; no connection, a timeout, a broken stream
LLM_ERRORS: tuple[type[Exception], ...] = (LLMStatusError, *TRANSPORT_ERRORS)


class Fuser(Protocol):
    @property
    def name(self) -> str: ...

    def fuse(self, signals: Mapping[Modality, ModalitySignal]) -> FusedPercept: ...


@dataclass(frozen=True, slots=True)
class TurnConfig:
    max_tokens_cap: int | None = None  # upper bound on any reply's max_tokens
    temperature: float | None = None  # fixes the sampling temperature (e.g. 0 for reproducible runs)
    history_chars: int = 6000  # recent-window budget sent to the LLM
    summary_chars: int = 1500  # running summary of what fell out of the window
    controls_at: ControlsAt = "system"  # where the prompt puts the controls' guidance (resolved at start-up)


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What every turn runs through: built once at start-up and shared by all conversations."""

    reader: TextReader
    batcher: MicroBatcher[str, TextReading]  # messages from many sessions share one text-model pass
    fusion: Fuser
    tracker: PersonaTracker
    policy: Policy
    profiles: Mapping[str, AgentProfile]
    llm: LLMClient
    store: SessionStore
    config: TurnConfig
    webhook: SafetyWebhook | None = None  # PERSONA_SAFETY_WEBHOOK: a human hand-off on crisis and safe-mode changes
    tts: Synthesizer | None = None  # spoken replies (PERSONA_TTS_ENABLED), for sessions that ask for them
    chooser: StrategyChooser | None = None  # the learned strategy chooser (None: the rules and the profile decide)


@dataclass(frozen=True, slots=True)
class UserTurn:
    text: str
    explain: bool = False
    voice: ModalitySignal | None = None  # prosody of the utterance the text was transcribed from
    tools: ToolUse = NO_TOOLS  # the functions the client offers the model on this turn, and results already in
    resumes: Paused | None = None  # a turn paused on tool calls, taken up again with their results (in `tools`)
    gate: asyncio.Event | None = None  # a speculative spoken turn: it waits here until the turn is confirmed


# --- 1. perceive: text (with its risk, one batched pass), voice, face ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Perceived:
    text: ModalitySignal | None  # None: the text model failed on this message
    risk: RiskAssessment
    language: LanguageGuess | None  # the message's language, as identified
    signals: Mapping[Modality, ModalitySignal]  # what joins fusion
    announce: tuple[PerceptionEvent, ...]  # this turn's new readings (a face was announced when its frame arrived)
    features: np.ndarray | None = None  # the text's features (TextReading.features), for the strategy chooser


@dataclass(frozen=True, slots=True)
class Paused:
    """A turn the model paused by calling tools: what it read and decided, kept so that the turn taken up again with
    the calls' outputs answers under the same controls, without reading the message (or moving the persona) twice."""

    perceived: Perceived
    percept: FusedPercept
    decision: Decision
    number: int  # the user turn's number in the session
    at: int  # the index of the user's message in the session's history
    tools: ToolUse  # the tools offered, every call made so far, and the results already in

    @property
    def waiting(self) -> tuple[str, ...]:
        """The calls whose outputs have not come back yet."""
        answered = {r.call_id for r in self.tools.results}
        return tuple(c.id for c in self.tools.calls if c.id not in answered)


async def perceive(p: Pipeline, turn: UserTurn, face: ModalitySignal | None) -> Perceived:
    try:
        reading, batch_size = await p.batcher.submit(turn.text)
    except Exception:  # the reader screens by rules even when its model fails; this is the batcher itself failing
        log.exception("text reading failed")
        reading, batch_size = TextReading(None, rules_only(turn.text)), 1
    signals: dict[Modality, ModalitySignal] = {}
    announce: list[PerceptionEvent] = []
    text = reading.signal
    if text is not None:
        text = replace(text, evidence={**text.evidence, "batch_size": batch_size})
        evidence = dict(text.evidence)
        if turn.explain and (attributions := await asyncio.to_thread(p.reader.explain, turn.text)) is not None:
            evidence["attributions"] = attributions
        signals["text"] = text
        announce.append(perception_event(text, evidence))
    if turn.voice is not None:
        signals["voice"] = turn.voice
        announce.append(perception_event(turn.voice, dict(turn.voice.evidence)))
    if face is not None:
        signals["face"] = face
    return Perceived(
        text=text,
        risk=reading.risk,
        language=reading.language,
        signals=signals,
        announce=tuple(announce),
        features=reading.features,
    )


async def read_in_context(p: Pipeline, rec: SessionRecord, perceived: Perceived, turn: int) -> Perceived:
    """The conversation counts (#41): right after a message read at caution, a farewell or giving things away (a
    caution alone) is a crisis ("nothing will ever get better" then "thanks for everything, take care"), and the
    message is read again joined to that earlier one: a crisis in the two together is a crisis. Only ever raises the
    level; the message's own reading stands otherwise."""
    if perceived.risk.level == "crisis" or turn < 2 or rec.safe_mode.caution_turn != turn - 1:
        return perceived
    signs = p.reader.signs
    if signs is not None and signs.escalates(perceived.risk.category):
        return replace(perceived, risk=replace(perceived.risk, level="crisis", read_with_turn=turn - 1))
    users = [m.content for m in rec.history if m.role == "user"]
    joint, _ = await p.batcher.submit(f"{users[-2]}\n{users[-1]}")
    if joint.risk.level != "crisis":
        return perceived
    return replace(perceived, risk=replace(joint.risk, read_with_turn=turn - 1))


# --- 2. screen: what the safety layer does about the risk it read ---------------------------------------------------


def screen(
    risk: RiskAssessment, model: str, session_id: str, language: LanguageGuess | None = None
) -> SafetyEvent | None:
    """The operator's event for a risky message (level, score and rule, never the message; logs carry no content),
    or for one in a language the phrase rules do not cover: it is never screened silently as if it were English."""
    lang = language.code if language is not None else None
    screened = language is None or language.screened
    if not risk.risk:
        if screened:
            return None
        SAFETY.labels("language_unsupported").inc()
        return SafetyEvent(
            risk=False,
            level="none",
            score=risk.score,
            rule=None,
            action="language_unsupported",
            model=model,
            language=lang,
            language_screened=False,
        )
    action = "crisis_reply" if risk.level == "crisis" else "caution_prompt"
    log.warning(
        "safety layer: %s in session %s (score %.3f, rule %s, category %s)",
        action,
        session_id,
        risk.score,
        bool(risk.rule),
        risk.category,
    )
    SAFETY.labels(action).inc()
    return SafetyEvent(
        risk=True,
        level="crisis" if risk.level == "crisis" else "caution",
        score=risk.score,
        rule=risk.rule,
        action=action,
        model=model,
        language=lang,
        language_screened=screened,
        category=risk.category,
        read_with_turn=risk.read_with_turn,
    )


# --- 3. fuse, 4. track, 5. decide -----------------------------------------------------------------------------------


def fuse(p: Pipeline, signals: Mapping[Modality, ModalitySignal]) -> FusedPercept:
    # A numpy computation of ~0.1 ms for one item (fusion/gated.py GMUWeights): a thread hop would cost more than it.
    return p.fusion.fuse(signals)


def track(p: Pipeline, persona: PersonaState, percept: FusedPercept, text: str) -> PersonaState:
    return p.tracker.update(persona, percept, read_style(text))


def decide(
    policy: Policy,
    chooser: StrategyChooser | None,
    rec: SessionRecord,
    profile: AgentProfile,
    perceived: Perceived,
    percept: FusedPercept,
    text: str,
) -> Decision:
    """The policy on the persona and the message in front of it; the learned chooser proposes the strategy (among
    the profile's) when the text was read. `rec.persona` is already updated with this turn."""
    state, risk = rec.persona, perceived.risk
    probs = perceived.features[-28:] if perceived.features is not None else None  # the 28 labels, last (risk_features)
    positive = probs is not None and positive_message(probs)
    moment = Moment.read(text, percept.distribution, state.turns, state.strategy, positive=positive)
    choice = None
    if chooser is not None and perceived.features is not None:
        x = chooser_features(perceived.features, moment, state)
        if x.shape[0] == chooser.n_features:  # (not without the sentence encoder it was trained with)
            choice = chooser.choose(x, profile.strategies)
    decision = policy.decide(
        state,
        profile.base,
        rec.overrides,
        profile.limits,
        RiskInput(level=risk.level, score=risk.score, rule=risk.rule, safe_mode=rec.safe_mode, category=risk.category),
        moment=moment,
        choice=choice,
        profile_rules=profile.rules,
        allowed=profile.strategies,
    )
    rec.persona = replace(state, strategy=decision.controls.strategy)
    return decision


def sticky(rec: SessionRecord, risk: RiskAssessment, turn: int) -> SafetyEvent | None:
    """Step the session's safe mode with user turn number `turn`'s risk; the operator's event when it begins or ends."""
    rec.safe_mode, change = rec.safe_mode.step(risk.level, turn)
    if change is None:
        return None
    log.warning("safety layer: safe mode %s in session %s (turn %d)", change, rec.id, turn)
    SAFETY.labels(f"safe_mode_{change}").inc()
    return SafetyEvent(
        risk=change == "entered",
        level="crisis" if change == "entered" else "none",
        score=risk.score,
        rule=risk.rule,
        action=f"safe_mode_{change}",
        model="safe-mode",
        category=risk.category if change == "entered" else None,
    )


# --- 6. render: the recent window, the summary of what fell out of it, the controls --------------------------------


def window(history: list[Message], budget_chars: int) -> list[Message]:
    """The most recent messages that fit the character budget, oldest first."""
    out: list[Message] = []
    used = 0
    for msg in reversed(history):
        used += len(msg.content)
        if used > budget_chars:
            break
        out.append(msg)
    return out[::-1]


def fold_summary(rec: SessionRecord, history: list[Message], cfg: TurnConfig) -> tuple[list[Message], str]:
    """The recent window of `history` plus the running summary of everything before it. Messages that fall out of the
    window are folded into rec.summary (extractive: what the user said, newest kept when it is full); the prompt
    quotes it as conversation data, never as instructions."""
    recent = window(history, cfg.history_chars)
    start = len(history) - len(recent)
    if start > rec.summarized:
        lines = [rec.summary] if rec.summary else []
        for m in history[rec.summarized : start]:
            if m.role == "user":
                text = " ".join(m.content.split())
                lines.append(f"The user said: \u201c{text[:200]}{'…' if len(text) > 200 else ''}\u201d")
        summary = " ".join(lines)
        if len(summary) > cfg.summary_chars:
            summary = "… " + summary[-cfg.summary_chars :].split(" ", 1)[-1]
        rec.summary, rec.summarized = summary, start
    return recent, rec.summary


async def render_prompt(
    p: Pipeline,
    rec: SessionRecord,
    profile: AgentProfile,
    decision: Decision,
    text: str,
    tools: ToolUse = NO_TOOLS,
    at: int | None = None,
) -> tuple[Prompt, bool]:
    """The prompt, fitted to the serving model's context with room for the reply: earlier turns give way first, then
    the user's message is cut to its beginning (True: response.done says so). Counted exactly by the engine (vLLM's
    /tokenize) only when the byte bound says it might not fit: a long message, or on a small-context model (the
    embedded engine's 4,096) a conversation whose window and system prompt pass that many bytes. `at`: the index of
    the user's message in history (the last message unless the turn was paused on tool calls and replied first)."""
    recent, summary = fold_summary(rec, rec.history[: len(rec.history) - 1 if at is None else at], p.config)
    prompt = render(
        profile,
        decision.controls,
        recent,
        text,
        summary=summary,
        max_tokens_cap=p.config.max_tokens_cap,
        temperature=p.config.temperature,
        controls_at=p.config.controls_at,
        # a crisis is answered with the fixed reply: no tool is ever offered to the model on it
        tools=tools if decision.controls.safety_mode != "crisis" else NO_TOOLS,
    )
    if (context := p.llm.config.context_tokens) is None:
        return prompt, False
    budget, cut = context - prompt.sampling.max_tokens - 16, False
    for _ in range(64):
        count = token_bound(prompt.messages)
        if count > budget:
            count = await p.llm.count_tokens(prompt) or count
        if count <= budget:
            break
        fitted = fit_context(prompt, budget, count)
        if fitted is None:
            break
        cut = cut or len(fitted.messages) == len(prompt.messages)  # nothing left to drop: the message was cut
        prompt = fitted
    return prompt, cut


# --- 7. generate and 8. guard: the model's stream (or the fixed crisis reply), checked before the user sees it ------


@dataclass(slots=True)
class Reply:
    """What the user has been sent of one reply (kept in history if the turn is cancelled), and how it went."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    parts: list[str] = field(default_factory=list)
    stats: StreamStats = field(default_factory=StreamStats)
    guard_hit: GuardHit | None = None
    t_first: float | None = None  # the model's first token
    t_shown: float | None = None  # the first text the user saw

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def show(self, piece: str) -> None:
        self.t_shown = self.t_shown or time.perf_counter()
        self.parts.append(piece)


class LLMFailed(Exception):
    def __init__(self, cause: Exception, status: int | None) -> None:
        super().__init__(str(cause))
        self.cause, self.status = cause, status


async def guarded(
    stream: AsyncGenerator[tuple[str, int], None], max_tokens: int, reply: Reply
) -> AsyncGenerator[str, None]:
    """The text the user may see: the output guard releases what no pattern can still claim, the closer ends the reply
    on a complete sentence near the token cap. On a guard hit the rest is dropped and a safe sentence ends it."""
    guard, closer, stats = OutputGuard(), SentenceCloser(max_tokens), reply.stats
    async with aclosing(stream):  # leaving early (guard hit, sentence end, cancel) closes the LLM request
        async for delta, tokens in stream:
            reply.t_first = reply.t_first or time.perf_counter()
            if safe := closer.feed(guard.feed(delta), tokens):
                yield safe
            if guard.hit is not None:
                break
            if closer.stop:  # a sentence ended close to the token cap: end the reply on it
                stats.finish_reason = "sentence_end"
                stats.completion_tokens = closer.tokens  # the stream ends before vLLM's usage chunk
                break
    held = guard.finish() if guard.hit is None and not closer.stop else ""  # the last sentence is checked here too
    if guard.hit is not None:
        reply.guard_hit, stats.finish_reason = guard.hit, "output_guard"
        tail = guard.hit.replacement
    elif closer.stop:
        tail = ""  # what the guard still held lies after the sentence the reply ended on
    else:
        tail = closer.feed(held, tokens=0) + closer.finish(stats.finish_reason)
    if tail:
        yield tail


async def generate(p: Pipeline, prompt: Prompt, fixed: str | None, reply: Reply) -> AsyncGenerator[str, None]:
    """The reply, piece by piece: `fixed` (the crisis reply: never left to the model) or the model's guarded stream.
    A transient LLM failure is retried while the user has seen nothing of the reply (then a retry cannot repeat or
    garble it); otherwise LLMFailed."""
    for attempt in range(len(LLM_RETRY_BACKOFF_S) + 1):
        reply.stats, reply.t_first = StreamStats(), None
        stream = _fixed(fixed, reply.stats) if fixed is not None else p.llm.stream(prompt, reply.stats)
        try:
            async with aclosing(guarded(stream, prompt.sampling.max_tokens, reply)) as pieces:
                async for piece in pieces:
                    yield piece
            return
        except LLM_ERRORS as exc:
            status = getattr(exc, "status_code", None)
            transient = status is None or status >= 500 or status == 429
            if not (transient and not reply.parts and attempt < len(LLM_RETRY_BACKOFF_S)):
                raise LLMFailed(exc, status) from exc
            log.warning(
                "LLM call failed (%s); retry %d in %.1f s",
                type(exc).__name__,
                attempt + 1,
                LLM_RETRY_BACKOFF_S[attempt],
            )
            await asyncio.sleep(LLM_RETRY_BACKOFF_S[attempt])


async def _fixed(text: str, stats: StreamStats) -> AsyncGenerator[tuple[str, int], None]:
    stats.finish_reason = "safety"
    yield text, 1


# --- 9. persist ----------------------------------------------------------------------------------------------------


def after_reply(mode: str, text: str, previous: str, locale: str | None) -> str:
    """Fixed text shown after the model's reply: in safe mode the crisis resources again; under caution a gentle
    pointer to support when the reply has none (the prompt asks for one; a small model often leaves it out) and the
    previous reply (`previous`) did not already end with it."""
    if mode == "safe":
        return "\n\n" + safety_resources(locale)
    if mode != "caution" or points_to_support(text):
        return ""
    note = support_note(locale)
    return "" if previous.endswith(note) else "\n\n" + note


def remember_reply(rec: SessionRecord, text: str, interrupted: bool) -> None:
    if text or interrupted:
        rec.history.append(Message("assistant", text, interrupted=interrupted))


# --- the turn -------------------------------------------------------------------------------------------------------


class Turn:
    """One user turn of one session. `run()` yields the events the client sees, in order, as they happen; `reply`
    holds what was sent so far."""

    def __init__(
        self,
        p: Pipeline,
        rec: SessionRecord,
        user: UserTurn,
        face: ModalitySignal | None,
        locale: str | None,
        speak: bool = False,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.p, self.rec, self.user, self.face, self.locale = p, rec, user, face, locale
        # A speculative turn (a pause in speech; the end of the turn not yet decided): it reads, decides and asks the
        # model on a scratch copy of the session, and waits at `gate` until the turn is confirmed. Cancelled before
        # that, it leaves nothing: no event, no message or persona in the session, nothing stored.
        self.gate = gate
        self.tentative = gate is not None
        self.speak = speak and p.tts is not None  # the session asked for spoken replies and the server has a voice
        self.reply = Reply()
        self.spoken: SpokenReply | None = None
        self.store_failed = False
        self.failed = False  # the LLM failed for good: no response.done
        self.kept = False  # the reply (or what was sent of it) is in history
        self.number = 0  # this user turn's number in the session (set when it runs)
        self.at = 0  # the index of the user's message in history (set when it runs)
        self.marks: dict[str, float] = {}
        self.paused: Paused | None = None  # the model called tools: the turn waits for their outputs

    @property
    def resources_locale(self) -> str | None:
        """The locale of the fixed texts (crisis resources, the support note): the session's, else the profile's."""
        return self.locale or self.p.profiles[self.rec.profile_id].safety_locale

    async def run(self) -> AsyncGenerator[Event, None]:
        """Screen, decide, stream, finish. A consumer that stops iterating (or is cancelled) stops the turn: the
        LLM request is closed and nothing more is spoken. A turn taken up again after tool calls (`user.resumes`)
        goes straight to the prompt, under the controls it had."""
        if (paused := self.user.resumes) is not None:
            self.number, self.at, self.marks = paused.number, paused.at, {"start": time.perf_counter()}
            perceived, percept, decision = paused.perceived, paused.percept, paused.decision
            prompt, cut = await self.prompted(decision)
        elif self.gate is not None:
            async with aclosing(self.speculated()) as events:
                async for event in events:
                    yield event
            return
        else:
            self.rec.history.append(Message("user", self.user.text))  # in the session from now on; stored below
            self.at = len(self.rec.history) - 1
            self.number = sum(1 for m in self.rec.history if m.role == "user")  # this user turn's number
            self.marks = {"start": time.perf_counter()}
            perceived = await self.perceived()
            for event in self.screened(perceived):
                yield event
            if (failed := await self.persist()) is not None:  # the message
                yield failed
            for event in self.announced(perceived):
                yield event
            percept, decision, prompt, cut = await self.decided(perceived)
        async with aclosing(self.answered(perceived, percept, decision, prompt, cut)) as answered:
            async for event in answered:
                yield event

    async def answered(
        self,
        perceived: Perceived,
        percept: FusedPercept,
        decision: Decision,
        prompt: Prompt,
        cut: bool,
        opened: tuple[AsyncGenerator[str, None], asyncio.Future[str | None]] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Stream the reply and finish the turn."""
        # closed with the turn, and with it the LLM request
        async with aclosing(self.streamed(percept, decision, prompt, opened)) as streamed:
            async for event in streamed:
                yield event
        if not self.failed:
            async with aclosing(self.finished(perceived, percept, decision, prompt, cut)) as finished:
                async for event in finished:
                    yield event

    async def speculated(self) -> AsyncGenerator[Event, None]:
        """The speculative turn: everything up to the model's first piece on a scratch copy of the session, then the
        gate; once through it, the copy's changes are the session's, and the events go out in the usual order."""
        assert self.gate is not None
        real, text = self.rec, self.user.text
        scratch = replace(real, history=[*real.history, Message("user", text)], overrides=dict(real.overrides))
        self.rec, self.at = scratch, len(real.history)
        self.number = sum(1 for m in scratch.history if m.role == "user")
        self.marks = {"start": time.perf_counter()}
        perceived = await self.perceived()
        safety = screen(perceived.risk, self.p.reader.risk_name, real.id, perceived.language)
        mode = sticky(scratch, perceived.risk, self.number)
        percept, decision, prompt, cut = await self.decided(perceived)
        fixed = crisis_reply(self.resources_locale) if decision.controls.safety_mode == "crisis" else None
        self.marks["request"] = time.perf_counter()
        pieces = generate(self.p, prompt, fixed, self.reply)
        first = asyncio.ensure_future(anext(pieces, None))
        try:
            await self.gate.wait()
        except BaseException:
            await cancel_and_wait(first)
            await pieces.aclose()
            raise
        # confirmed: the session takes the message, the persona, safe mode and the summary the copy moved to
        self.tentative = False
        real.history.append(scratch.history[-1])
        real.persona, real.safe_mode = scratch.persona, scratch.safe_mode
        real.summary, real.summarized = scratch.summary, scratch.summarized
        self.rec = real
        if mode is not None and self.p.webhook is not None:
            self.p.webhook.notify(mode, real.id, real.tenant, real.user_id, self.number)
        for said in (safety, mode):
            if said is not None:
                yield said
        if (failed := await self.persist()) is not None:
            yield failed
        for event in self.announced(perceived):
            yield event
        async with aclosing(self.answered(perceived, percept, decision, prompt, cut, (pieces, first))) as answered:
            async for event in answered:
                yield event

    async def perceived(self) -> Perceived:
        """Read first: the text (emotion and risk in one pass; the phrase rules need no model) is read before anything
        else can fail, so a crisis is answered even with the store or the LLM down."""
        perceived = await perceive(self.p, self.user, self.face)
        perceived = await read_in_context(self.p, self.rec, perceived, self.number)
        self.marks["perceived"] = time.perf_counter()
        return perceived

    def screened(self, perceived: Perceived) -> list[Event]:
        """The operator's events: the risk read, and safe mode beginning or ending (with the webhook's hand-off)."""
        p, rec, turn = self.p, self.rec, self.number
        safety = screen(perceived.risk, p.reader.risk_name, rec.id, perceived.language)
        mode = sticky(rec, perceived.risk, turn)
        events: list[Event] = [e for e in (safety, mode) if e is not None]
        if mode is not None and p.webhook is not None:
            p.webhook.notify(mode, rec.id, rec.tenant, rec.user_id, turn)
        return events

    @staticmethod
    def announced(perceived: Perceived) -> list[Event]:
        """The readings of this turn (and, when the text model failed, why the reply goes on without it)."""
        failed: list[Event] = (
            []
            if perceived.text is not None
            else [
                ErrorEvent(
                    code="perception_failed",
                    retryable=False,
                    message="the text emotion model failed on this message; the reply goes on without it",
                )
            ]
        )
        return failed + list(perceived.announce)

    async def decided(self, perceived: Perceived) -> tuple[FusedPercept, Decision, Prompt, bool]:
        """Fuse, track the persona, decide the controls, render the prompt (and whether the message had to be cut)."""
        p, rec, marks = self.p, self.rec, self.marks
        marks["fuse"] = time.perf_counter()
        percept = fuse(p, perceived.signals)
        marks["fused"] = time.perf_counter()
        rec.persona = track(p, rec.persona, percept, self.user.text)
        profile = p.profiles[rec.profile_id]
        decision = decide(p.policy, p.chooser, rec, profile, perceived, percept, self.user.text)
        prompt, cut = await self.prompted(decision)
        return percept, decision, prompt, cut

    async def prompted(self, decision: Decision) -> tuple[Prompt, bool]:
        """The prompt under the decision (with the tools, and the outputs of calls already made)."""
        p, rec = self.p, self.rec
        profile = p.profiles[rec.profile_id]
        prompt, cut = await render_prompt(p, rec, profile, decision, self.user.text, self.user.tools, self.at)
        self.marks["rendered"] = time.perf_counter()
        return prompt, cut

    async def streamed(
        self,
        percept: FusedPercept,
        decision: Decision,
        prompt: Prompt,
        opened: tuple[AsyncGenerator[str, None], asyncio.Future[str | None]] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """The reply, piece by piece (the fixed crisis reply, or the model's guarded stream), spoken too when the
        session asked for it. The request goes out first; saving the persona and the persona and controls events
        happen while the model reads the prompt, and the first piece is shown after them. When the LLM fails for
        good, the client is told (and `failed` is set)."""
        p, reply = self.p, self.reply
        if opened is None:  # (a speculative turn opened the request before its gate)
            fixed = crisis_reply(self.resources_locale) if decision.controls.safety_mode == "crisis" else None
            self.marks["request"] = time.perf_counter()
            started = generate(p, prompt, fixed, reply)
            opened = started, asyncio.ensure_future(anext(started, None))
        try:
            async with aclosing(opened[0]) as pieces:
                first = opened[1]
                try:
                    if (failed := await self.persist()) is not None:  # the persona is kept even if the reply is not
                        yield failed
                    yield persona_event(self.rec.persona, percept)
                    yield controls_event(decision, prompt)
                    piece = await first
                finally:
                    await cancel_and_wait(first)  # still running: the consumer went away or the turn was cancelled
                if self.speak and p.tts is not None:  # sentences are synthesised while the model goes on writing
                    self.spoken = SpokenReply(p.tts, reply.id, decision.controls.pace)
                while piece is not None:
                    for event in self.show(piece):
                        yield event
                    piece = await anext(pieces, None)
        except LLMFailed as failed:
            if self.spoken is not None:
                await self.spoken.aclose()
            self.failed = True
            for event in await self.llm_failed(failed):
                yield event
        except BaseException:
            if self.spoken is not None:
                await self.spoken.aclose()
            raise

    def show(self, piece: str) -> list[Event]:
        """The piece as a delta, then the speech synthesised since the last piece."""
        self.reply.show(piece)
        if self.spoken is None:
            return [ResponseDelta(response_id=self.reply.id, text=piece)]
        self.spoken.feed(piece)
        return [ResponseDelta(response_id=self.reply.id, text=piece), *self.spoken.ready()]

    async def finished(
        self, perceived: Perceived, percept: FusedPercept, decision: Decision, prompt: Prompt, cut: bool
    ) -> AsyncGenerator[Event, None]:
        """After the last piece: the fixed reminder (safe mode, caution), the rest of the speech, the output guard's
        event, the reply kept and stored, and response.done with the timings and the explanation."""
        p, rec, reply, marks = self.p, self.rec, self.reply, self.marks
        previous = next((m.content for m in reversed(rec.history) if m.role == "assistant"), "")
        if reminder := after_reply(decision.controls.safety_mode, reply.text, previous, self.resources_locale):
            for event in self.show(reminder):
                yield event
        if self.spoken is not None:  # the rest is spoken before response.done (a cancel meanwhile stops it)
            try:
                async with aclosing(self.spoken.finish()) as spoken:
                    async for event in spoken:
                        yield event
            except BaseException:
                await self.spoken.aclose()
                raise
        if reply.guard_hit is not None:
            log.warning("output guard: %s reply blocked in session %s", reply.guard_hit.kind, rec.id)
            SAFETY.labels("output_blocked").inc()
            yield SafetyEvent(
                risk=True,
                level="caution",
                score=1.0,
                rule=reply.guard_hit.kind,
                action="output_blocked",
                model="output-guard",
            )
        crisis = decision.controls.safety_mode == "crisis"
        calls = reply.stats.tool_calls if not crisis else ()
        if calls:  # paused before the calls are sent: a client may answer them before response.done
            reply.stats.finish_reason = "tool_calls"
            made = self.user.tools
            self.paused = Paused(
                perceived,
                percept,
                decision,
                self.number,
                self.at,
                ToolUse(made.tools, made.choice, (*made.calls, *calls), made.results),
            )
        for call in calls:  # the client runs them and sends their output back; the turn then continues
            yield ResponseToolCall(response_id=reply.id, call_id=call.id, name=call.name, arguments=call.arguments)
        marks["end"] = time.perf_counter()
        self.kept = True
        remember_reply(rec, reply.text, interrupted=False)
        if (failed := await self.persist()) is not None:
            yield failed
        stats = reply.stats
        TURNS.labels("safety_reply" if stats.finish_reason == "safety" else "done").inc()
        for kind, n in (("prompt", stats.prompt_tokens), ("completion", stats.completion_tokens)):
            if n:
                LLM_TOKENS.labels(kind).inc(n)
        yield ResponseDone(
            response_id=reply.id,
            text=reply.text,
            finish_reason=stats.finish_reason,
            model="fixed:crisis_reply" if crisis else p.llm.config.model,
            usage=Usage(prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens),
            timings_ms=self.timings(),
            explanation=explanation(perceived, percept, rec, decision, prompt, calls),
            input_truncated=cut and not crisis,
        )

    async def cut_short(self) -> ErrorEvent | None:
        """The turn was stopped (cancel, barge-in, the consumer went away): history keeps what had been sent, marked
        interrupted, and the session is saved (the event returned if that failed)."""
        if not self.marks:  # stopped before it began: nothing of it is in the session
            return None
        if not self.kept:
            self.kept = True
            remember_reply(self.rec, self.reply.text, interrupted=True)
        return await self.persist()

    def timings(self) -> Timings:
        timings, spoken = turn_timings(self.marks, self.reply), self.spoken
        if spoken is not None and spoken.first_audio_at is not None:
            timings = replace(
                timings,
                first_audio=round((spoken.first_audio_at - self.marks["start"]) * 1000, 3),
                tts_sentence_p50=round(sorted(spoken.synth_ms)[len(spoken.synth_ms) // 2], 3),
            )
        observe_timings(asdict(timings))
        return timings

    async def persist(self) -> ErrorEvent | None:
        """Save the session. If the store fails, the conversation goes on (the record stays in memory, and the next
        save that succeeds writes everything since) and the client is told once per turn (the event returned):
        nothing is lost silently."""
        if self.store_failed:  # it failed earlier in this turn: the next turn tries again, and catches up
            return None
        try:
            await self.p.store.save(self.rec)
        except SessionErased:
            raise  # erased while live: the conversation ends (Conversation.erase), nothing is written back
        except Exception:
            log.exception("store failed in session %s", self.rec.id)
            STORE_FAILURES.inc()
            self.store_failed = True
            return ErrorEvent(
                code="store_unavailable",
                retryable=True,
                message=(
                    "the session could not be saved just now; the conversation goes on and is saved with the next "
                    "write that succeeds"
                ),
            )
        return None

    async def llm_failed(self, failed: LLMFailed) -> list[ErrorEvent]:
        """The LLM failed for good on this turn. The user's message is already stored; a reply cut mid-way is kept as
        interrupted. The error says whether sending the message again may work."""
        TURNS.labels("llm_failed").inc()
        name, status = type(failed.cause).__name__, failed.status
        if self.reply.parts:
            self.kept = True
            remember_reply(self.rec, self.reply.text, interrupted=True)
            store = await self.persist()
            return [
                e
                for e in (
                    store,
                    ErrorEvent(
                        code="llm_interrupted",
                        retryable=True,
                        message=(f"the language model's stream broke off mid-reply ({name})"),
                    ),
                )
                if e is not None
            ]
        if status is not None:
            return [
                ErrorEvent(
                    code="llm_error",
                    message=f"the language model answered HTTP {status}",
                    retryable=status >= 500 or status == 429,
                )
            ]
        return [
            ErrorEvent(code="llm_unavailable", retryable=True, message=f"the language model did not answer: {name}")
        ]


# --- what the client is told -----------------------------------------------------------------------------------------


def persona_event(persona: PersonaState, percept: FusedPercept) -> PersonaEvent:
    return PersonaEvent(
        state=persona.view(),
        gates={m: g for m, g in percept.gates.items()},
        present=percept.present,
        fusion_model=percept.model,
    )


def controls_event(decision: Decision, prompt: Prompt) -> ControlsEvent:
    return ControlsEvent(
        controls=decision.controls.rounded(),
        sampling=prompt.sampling.as_dict(),
        rules_fired=decision.fired,
        overridden=dict(decision.overridden),
        rejected_overrides=dict(decision.rejected_overrides),
    )


def turn_timings(marks: Mapping[str, float], reply: Reply) -> Timings:
    def ms(a: float | None, b: float | None) -> float | None:
        return round((b - a) * 1000, 3) if a is not None and b is not None else None

    t0, req = marks["start"], marks["request"]
    return Timings(
        perception=ms(t0, marks.get("perceived")),  # none of these on a turn taken up after tool calls
        fusion=ms(marks.get("fuse"), marks.get("fused")),
        policy=ms(marks.get("fused"), marks.get("rendered")),
        overhead_before_llm=ms(t0, req),
        llm_first_token=ms(req, reply.t_first),
        first_delta=ms(req, reply.t_shown),
        llm_total=ms(req, marks["end"]),
        total=ms(t0, marks["end"]),
    )


# how the explanation says what was read, in plain English
_SEEN = {"text": "your words read as", "voice": "your voice sounded", "face": "your face looked"}
_FELT = {
    "anger": "angry",
    "disgust": "put off",
    "fear": "anxious",
    "joy": "happy",
    "sadness": "sad",
    "surprise": "surprised",
    "neutral": "calm",
}


def explanation(
    perceived: Perceived,
    percept: FusedPercept,
    rec: SessionRecord,
    decision: Decision,
    prompt: Prompt,
    calls: Sequence[ToolCall] = (),
) -> Explanation:
    signals, risk, persona = perceived.signals, perceived.risk, rec.persona
    rules = tuple(f.rule for f in decision.fired)
    top3 = {
        m: {k: round(v, 3) for k, v in sorted(zip(LABELS, s.distribution.tolist()), key=lambda kv: -kv[1])[:3]}
        for m, s in signals.items()
    }
    read = ", ".join(f"{_SEEN[m]} {_FELT.get(s.top, s.top)}" for m, s in signals.items()) or "nothing was read"
    return Explanation(
        perceived=top3,
        gates=dict(percept.gates),
        present=tuple(percept.present),
        persona=persona.view(),
        rules_fired=rules,
        why=tuple(f.why for f in decision.fired),
        controls=decision.controls.rounded(),
        sampling=prompt.sampling.as_dict(),
        safety=SafetyReading(
            level=risk.level,
            score=risk.score,
            rule=risk.rule,
            category=risk.category,
            read_with_turn=risk.read_with_turn,
            mode=decision.controls.safety_mode,
            safe_mode=rec.safe_mode.as_dict(),
        ),
        summary=(
            f"This turn {read}; over the conversation you have seemed "
            f"{_FELT.get(persona.dominant_emotion, persona.dominant_emotion)}. {decision.strategy_why} "
            f"Rules fired: {', '.join(rules) if rules else 'none'}."
            + (f" Tools called: {', '.join(c.name for c in calls)}." if calls else "")
        ),
        tools_called=tuple(c.name for c in calls),
    )
