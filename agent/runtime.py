"""The runtime, the composition root: the configuration, start-up (every model loaded once by its factory, the LLM
started or reached), readiness, and the `Agent` that holds the sessions and hands each conversation the one pipeline
(perception → fusion → persona → prompts → LLM; the turn itself is agent/turn.py)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import numpy as np

from agent.analysis import FaceAnalysis, TextAnalysis, VoiceAnalysis, analyze_audio, analyze_face, analyze_texts
from agent.batcher import MicroBatcher
from agent.conversation import Admit, Conversation, Evict, Inputs
from agent.events import Emit, Event, ResponseToolCall, SessionStarted
from agent.llm import STREAM_INTERVAL_S, LLMClient, LLMConfig
from agent.llm.engine import EmbeddedEngine, EmbeddedEngineConfig, EngineStatus, adapter_controls_at
from agent.metrics import STORE_FAILURES
from agent.reading import TextPerceiver, TextReader
from agent.sessions.leases import Lease, Leases, LocalLeases, open_leases
from agent.sessions.store import (
    LOCAL_TENANT,
    SessionExport,
    SessionRecord,
    SessionStore,
    UserExport,
    open_store,
    session_export,
    user_tombstone,
)
from agent.tts import load_synthesizer
from agent.turn import Fuser, Pipeline, Turn, TurnConfig, UserTurn
from agent.voice import VoiceConfig, VoiceModels
from agent.webhook import SafetyWebhook
from fusion import ConfidenceFusion
from fusion.gated import default_fusion_path, load_gated_fusion
from perception.environment import DEFAULT_CACHE_DIR, configure_third_party
from perception.face.expression import default_face_model_paths
from perception.face.perceiver import (
    FacePerceiver,
    KerasFacePerceiver,
    default_deepface_weights,
    load_deepface_perceiver,
    load_keras_face_perceiver,
)
from perception.language import load_language_id
from perception.safety import default_risk_classifier_path, load_risk_classifier
from perception.sentence_encoder import default_sentence_encoder_dir, load_sentence_encoder
from perception.text_lexicon import load_lexicon_text_perceiver
from perception.text_model import TextEmotionModel, default_text_model_dir, load_text_model
from perception.voice.affect import default_voice_affect_path, load_voice_affect, voice_affect_encoder
from perception.voice.audio import SAMPLE_RATE, decode_file
from perception.voice.stt import load_stt
from perception.voice.turn import load_smart_turn
from perception.voice.vad import load_vad
from perception.warning_signs import default_warning_sign_model_path, load_warning_sign_model
from persona import PersonaState, PersonaTracker, load_policy, load_strategy_chooser
from prompts import ControlsAt, Message, load_profiles
from prompts.tools import NO_TOOLS, ToolUse

log = logging.getLogger(__name__)


ANALYSIS_QUEUE = 4  # batch analysis requests running or waiting at once, server-wide
T = TypeVar("T")
STORE_WAIT_S = 3.0  # a session start waits this long for the store before it goes on in memory
TOOL_TURN_TTL_S = 600.0  # a stateless turn that called a tool is remembered this long for the call's output
TOOL_TURNS_KEPT = 10_000  # ... and at most this many of them (the oldest go first)


class UnknownProfile(ValueError):
    pass


class UnknownSession(KeyError):
    pass


class AnalysisUnavailable(RuntimeError):
    pass


class AnalysisBusy(RuntimeError):
    """ANALYSIS_QUEUE analysis requests already run or wait: this one is refused, not queued."""


class SessionInUse(RuntimeError):
    """Another live connection is running this session: one writer per session."""


async def _no_evict() -> None:
    pass


@dataclass(frozen=True, slots=True)
class AgentConfig:
    default_profile: str = "wellbeing_coach"
    max_tokens_cap: int | None = None  # upper bound on any reply's max_tokens
    temperature: float | None = None  # fixes the sampling temperature (e.g. 0 for reproducible runs)
    history_chars: int = 6000  # recent-window budget sent to the LLM
    # Where the prompt puts the controls' guidance (prompts.render.ControlsAt): "system" (in the system message at the
    # top), "end" (a second system message after the user's message), or "auto": what the embedded engine's adapter
    # was trained with (its training.json), and "system" for an external LLM (Mistral's chat template takes a system
    # message only at the top).
    controls_at: Literal["auto", "system", "end"] = "auto"
    policy_file: Path | None = None
    # The learned strategy chooser (persona/chooser.py) proposes each reply's strategy and the rules dispose; off,
    # the rules and the profile's default decide alone. Its weights: the shipped ones unless a file is named.
    learned_strategy: bool = True
    strategy_chooser_file: Path | None = None
    text_model: Literal["trained", "lexicon"] = "trained"
    text_model_dir: Path | None = None  # default: the artifact shipped in perception/models/text_emotion
    model_threads: int = 1  # intra-op threads per model
    voice_enabled: bool = True
    tts_enabled: bool = True  # spoken replies (session.start voice_reply), Piper with the shipped Joe voice
    stt_model: Literal["tiny.en", "base"] = "tiny.en"
    # Speech-to-text sits on the spoken turn's critical path (end of turn -> transcript -> LLM): two threads take a
    # 3 s utterance from ~700 to ~500 ms here with the 30 s window.
    stt_threads: int = 2
    # The safety encoder (perception/sentence_encoder.py) reads every message before the LLM is called: with two
    # threads it adds ~28 ms to a 30-word message here (bench/safety.py), ~13 ms to a short one.
    encoder_threads: int = 2
    # "short": an utterance of up to 15 s is encoded with 2 s of silence after it instead of Whisper's 30 s window
    # (perception/voice/stt.py; bench/voice.py compares both).
    stt_window: Literal["short", "full"] = "short"
    vad_min_silence_ms: int = 600  # silence that ends a spoken turn
    cache_dir: Path = DEFAULT_CACHE_DIR
    voice: VoiceConfig = VoiceConfig()
    face_enabled: bool = True
    face_backend: Literal["keras", "deepface"] = "keras"
    face_detector: Literal["blazeface", "haar"] = "blazeface"  # for the keras backend (bench/face.py compares them)
    face_model_paths: tuple[Path, ...] = ()  # the expression network's weights (several: an ensemble); default: shipped
    face_ttl_s: float = 15.0  # a face reading older than this no longer joins a turn's fusion
    face_max_fps: float = 5.0  # camera frames accepted per second per session (burst of 2)
    store: Literal["sqlite", "redis", "memory"] = "sqlite"
    redis_url: str | None = None  # for store="redis", e.g. redis://127.0.0.1:6379/0
    fusion: Literal["gated", "confidence"] = "gated"
    store_path: Path | None = None  # default: cache_dir / "sessions.sqlite3"
    summary_chars: int = 1500  # running summary of what fell out of the window
    retention_days: float | None = None  # erase sessions and personas not written for this long (None: keep)
    safety_webhook: str | None = None  # POST here (JSON, retried) when a session enters and leaves safe mode
    safety_webhook_secret: str | None = None  # signs each webhook request (HMAC-SHA256 headers, agent/webhook.py)


class Agent:
    """Sessions and their conversations (start, resume, take over, erase, export), and the batch analyses the REST
    routes offer. A turn's pipeline lives in agent/turn.py; this class only hands it to each conversation."""

    def __init__(
        self, *, pipeline: Pipeline, inputs: Inputs, config: AgentConfig, leases: Leases | None = None
    ) -> None:
        assert config.default_profile in pipeline.profiles, (
            f"default profile {config.default_profile!r} not in {sorted(pipeline.profiles)}"
        )
        self.pipeline, self.inputs, self.config = pipeline, inputs, config
        self.store = pipeline.store
        self.leases: Leases = (
            leases or LocalLeases()
        )  # one writer per session across processes (agent/sessions/leases.py)
        # (tenant, session id) -> its one live conversation here, how to tell its connection it was taken over, and
        # the session's lease; leases taken by start_session wait in _pending for converse()
        self._live: dict[tuple[str, str], tuple[Conversation, Evict, Lease]] = {}
        # (tenant, user, tool call id) -> when, and the persona the stateless turn that made the call started from:
        # the request that brings the call's output starts there too, so it reads the message into the same persona
        # and decides the same controls (and the user's persona takes the message once)
        # (tenant, user, call id) -> (when, the persona the turn started from, its session): erased with either
        self._tool_turns: OrderedDict[tuple[str, str | None, str], tuple[float, PersonaState, str]] = OrderedDict()
        self._pending: dict[tuple[str, str], Lease] = {}
        self._releases: set[asyncio.Future[None]] = set()
        self._analysis_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self._analysis_slots = asyncio.Semaphore(ANALYSIS_QUEUE)

    async def start(self) -> None:
        """Begin answering other workers' takeover requests (with the Redis store)."""
        await self.leases.start(self._let_go, self._end_erased)

    async def _let_go(self, tenant: str, session_id: str) -> None:
        """Close the live conversation on this session here (it saves), tell its connection, release its lease."""
        live = self._live.get((tenant, session_id))
        if live is None:
            return
        conv, evict, lease = live
        await conv.close()
        await evict()
        await self.leases.release(lease)

    @property
    def face_enabled(self) -> bool:
        return self.inputs.face is not None

    @property
    def profile_names(self) -> frozenset[str]:
        """The agent profiles a session or a request may name."""
        return frozenset(self.pipeline.profiles)

    @property
    def llm_model(self) -> str:
        return self.pipeline.llm.config.model

    async def _analysis(self, fn: Callable[..., T], *args: object) -> T:
        """Batch analysis runs on its own executor (one thread, ANALYSIS_QUEUE requests at most waiting), never on the
        default one that the turn path (store, text batches, speech, frames) uses: no analysis can stall a turn."""
        if self._analysis_slots.locked():
            raise AnalysisBusy(f"{ANALYSIS_QUEUE} analysis requests are already running or waiting; try again shortly")
        async with self._analysis_slots:
            return await asyncio.get_running_loop().run_in_executor(self._analysis_pool, partial(fn, *args))

    async def analyze_text(self, texts: Sequence[str], explain: bool = False) -> list[TextAnalysis]:
        if (model := self.pipeline.reader.model) is None:
            raise AnalysisUnavailable("text analysis needs the trained text model (PERSONA_TEXT_MODEL=trained)")
        return await self._analysis(analyze_texts, model, texts, explain)

    async def analyze_voice(
        self, data: bytes, max_seconds: float, charge: Callable[[float], Awaitable[None]] | None = None
    ) -> VoiceAnalysis:
        """One audio file; `charge(seconds)` is awaited once it is decoded, before the models run (the key's rate
        is drawn by length; it raises to refuse)."""
        if self.inputs.voice is None:
            raise AnalysisUnavailable("voice is not enabled on this server (PERSONA_VOICE_ENABLED)")
        audio = await self._analysis(decode_file, data, max_seconds)
        if charge is not None:
            await charge(len(audio) / SAMPLE_RATE)
        return await self._analysis(analyze_audio, self.inputs.voice, self.pipeline.reader.model, audio)

    async def analyze_face(self, data: bytes, crop: bool = False, explain: bool = False) -> FaceAnalysis:
        if self.inputs.face is None:
            raise AnalysisUnavailable("face input is not enabled on this server (PERSONA_FACE_ENABLED)")
        return await self._analysis(analyze_face, self.inputs.face, data, crop, explain)

    async def aclose(self) -> None:
        self._analysis_pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.gather(*self._releases, return_exceptions=True)
        await self.leases.aclose()
        await self.pipeline.batcher.aclose()
        await self.pipeline.llm.aclose()
        if self.pipeline.webhook is not None:
            await self.pipeline.webhook.aclose()
        await self.store.aclose()

    async def start_session(
        self, profile: str | None, user_id: str | None, resume: str | None, tenant: str = LOCAL_TENANT
    ) -> tuple[SessionRecord, bool]:
        """A new session of `tenant`, or its stored one named by `resume` (another tenant's session is unknown to it,
        exactly as one that never existed). Raises UnknownProfile / UnknownSession / SessionInUse."""
        if resume:
            # One writer per session: the newest connection takes it over (a reconnect after a network drop usually
            # arrives before the old socket is noticed dead). The old one stops, saves, and is told — here, or in
            # another worker asked through the lease — before the record is loaded.
            await self._let_go(tenant, resume)
            lease = await self.leases.take(tenant, resume)
            if lease is None:
                raise SessionInUse(resume)
            rec = await self.store.load(resume, tenant)
            if rec is None:
                await self.leases.release(lease)
                raise UnknownSession(resume)
            self._pending[(tenant, resume)] = lease
            return rec, True
        profile_id = profile or self.config.default_profile
        if profile_id not in self.pipeline.profiles:
            raise UnknownProfile(f"unknown profile {profile_id!r}; available: {sorted(self.pipeline.profiles)}")
        now = time.time()
        # Screening never waits on storage: a store that fails or hangs now (locked file, Redis down) does not stop the
        # session. It starts in memory and every later save tries again (Turn.persist); the crisis reply needs nothing.
        known = await self._stored_persona(user_id, tenant) if user_id else None
        # A returning user starts from where they were, decayed by the time away.
        tracker = self.pipeline.tracker
        persona = tracker.decay(known, now) if known is not None else PersonaState.initial(now)
        rec = SessionRecord(id=uuid.uuid4().hex, profile_id=profile_id, user_id=user_id, persona=persona, tenant=tenant)
        try:
            lease = await asyncio.wait_for(self.leases.take(tenant, rec.id), STORE_WAIT_S)
        except Exception:  # a fresh random id: nobody else can hold it, so going on without the shared lease is safe
            log.warning("lease store unavailable; session %s starts with a local lease", rec.id)
            lease = Lease(tenant, rec.id, "local")
        if lease is None:
            raise SessionInUse(rec.id)
        try:
            await asyncio.wait_for(self.store.save(rec), STORE_WAIT_S)
        except Exception:
            log.warning("store unavailable; session %s starts in memory and is saved when the store answers", rec.id)
            STORE_FAILURES.inc()
        self._pending[(tenant, rec.id)] = lease
        return rec, False

    async def _stored_persona(self, user_id: str, tenant: str) -> PersonaState | None:
        try:
            return await asyncio.wait_for(self.store.user_persona(user_id, tenant), STORE_WAIT_S)
        except Exception:
            log.warning("store unavailable; user's persona not carried into this session")
            STORE_FAILURES.inc()
            return None

    async def delete_session(self, session_id: str, tenant: str) -> bool:
        """Erase a session of `tenant`. Its live conversation here ends at once (and tells its client); one in
        another worker ends at its next write, which the store refuses: nothing writes an erased session back."""
        erased = await self.store.delete_session(session_id, tenant)
        here = await self._end_erased(tenant, session_id, None)
        await self.leases.announce_erasure(tenant, session_id, None)
        return erased or here > 0

    async def export_session(self, session_id: str, tenant: str) -> SessionExport | None:
        """What is stored of one session of `tenant` (read-only: a live conversation on it goes on)."""
        rec = await self.store.load(session_id, tenant)
        return session_export(rec) if rec is not None else None

    async def delete_user(self, user_id: str, tenant: str) -> int:
        """Erase a user of `tenant`: persona and sessions. Their live conversations end as in delete_session."""
        n = await self.store.delete_user(user_id, tenant)
        tombstone = user_tombstone(tenant, user_id)
        here = await self._end_erased(tenant, None, tombstone)
        await self.leases.announce_erasure(tenant, None, tombstone)
        return max(n, 0) + here if n >= 0 or here else -1

    async def _end_erased(self, tenant: str, session_id: str | None, user: str | None) -> int:
        """End the live conversations here that an erasure (here or in another worker) removed; how many. The
        personas kept for tool round trips of that user or session go too."""
        for key, (_, _, sid) in list(self._tool_turns.items()):
            t, uid, _ = key
            if t == tenant and (
                sid == session_id or user is not None and uid is not None and user_tombstone(tenant, uid) == user
            ):
                del self._tool_turns[key]
        live = [
            c
            for (t, sid), (c, _, _) in list(self._live.items())
            if t == tenant
            and (
                sid == session_id
                or user is not None
                and c.record.user_id is not None
                and user_tombstone(tenant, c.record.user_id) == user
            )
        ]
        for conv in live:
            await conv.erase()
        return len(live)

    async def export_user(self, user_id: str, tenant: str) -> UserExport | None:
        return await self.store.export_user(user_id, tenant)

    async def purge_expired(self) -> int:
        """Retention: erase what was last written more than retention_days ago (0 or None: keep)."""
        if not self.config.retention_days:
            return 0
        return await self.store.purge(time.time() - self.config.retention_days * 86400)

    async def complete(
        self,
        history: Sequence[Message],
        text: str,
        *,
        tenant: str = LOCAL_TENANT,
        user_id: str | None = None,
        profile: str | None = None,
        locale: str | None = None,
        tools: ToolUse = NO_TOOLS,
    ) -> AsyncGenerator[Event, None]:
        """One stateless turn (the OpenAI-compatible route): a new session of `tenant` whose history is what the
        client sent, then `text` through the same turn pipeline as the WebSocket (perception, persona, policy,
        safety, guard). Yields `session.started` (the new session's id), then the turn's events. The session is
        stored like any other (exported and erased with the user); `user_id` carries the user's persona across
        requests. `tools`: the functions offered, and the outputs of calls already made (the turn continues with
        them as quoted data). Raises UnknownProfile."""
        rec, _ = await self.start_session(profile, user_id, None, tenant)
        lease = self._pending.pop((tenant, rec.id), None)
        rec.history.extend(history)
        if tools.calls and (started := self._tool_turn(tenant, user_id, tools.calls[0].id)) is not None:
            rec.persona = started
        before = rec.persona
        turn = Turn(self.pipeline, rec, UserTurn(text, tools=tools), None, locale)
        try:
            yield SessionStarted(session_id=rec.id, profile=rec.profile_id, resumed=False, user_id=rec.user_id)
            async with aclosing(turn.run()) as events:
                async for event in events:
                    if isinstance(event, ResponseToolCall):
                        self._remember_tool_turn(tenant, user_id, event.call_id, before, rec.id)
                    yield event
        except (asyncio.CancelledError, GeneratorExit):  # the client went away: kept as cut short, as on the WebSocket
            await turn.cut_short()
            raise
        finally:
            if lease is not None:
                self._release_later(lease)

    def _remember_tool_turn(
        self, tenant: str, user: str | None, call_id: str, persona: PersonaState, session_id: str
    ) -> None:
        self._tool_turns[(tenant, user, call_id)] = (time.monotonic(), persona, session_id)
        while len(self._tool_turns) > TOOL_TURNS_KEPT:
            self._tool_turns.popitem(last=False)

    def _tool_turn(self, tenant: str, user: str | None, call_id: str) -> PersonaState | None:
        """The persona the turn that made `call_id` started from, if it was made here within TOOL_TURN_TTL_S (with
        several workers, a request that lands on another one reads the message afresh)."""
        now = time.monotonic()
        while self._tool_turns and now - next(iter(self._tool_turns.values()))[0] > TOOL_TURN_TTL_S:
            self._tool_turns.popitem(last=False)
        kept = self._tool_turns.get((tenant, user, call_id))
        return kept[1] if kept is not None else None

    def converse(
        self,
        record: SessionRecord,
        emit: Emit,
        evict: Evict | None = None,
        locale: str | None = None,
        admit: Admit | None = None,
        voice_reply: bool = False,
    ) -> Conversation:
        """The live conversation on `record`; one per session in this process, released when it closes. `evict` is
        called if a later connection takes the session over; `admit` is asked before a spoken turn runs (the key's
        rate limit); `voice_reply` speaks the replies too (when the server has a voice). SessionInUse only when two
        resumes race."""
        key = (record.tenant, record.id)
        lease = self._pending.pop(key, None) or Lease(record.tenant, record.id, "local")
        if key in self._live:
            self._release_later(lease)
            raise SessionInUse(record.id)
        conv = Conversation(
            self.pipeline,
            record,
            emit,
            self.inputs,
            self._released,
            locale=locale,
            admit=admit,
            voice_reply=voice_reply and self.pipeline.tts is not None,
        )
        self._live[key] = (conv, evict or _no_evict, lease)
        return conv

    def _released(self, conversation: Conversation) -> None:
        key = (conversation.record.tenant, conversation.record.id)
        if (live := self._live.get(key)) is not None and live[0] is conversation:
            del self._live[key]
            self._release_later(live[2])

    def _release_later(self, lease: Lease) -> None:
        task = asyncio.ensure_future(self.leases.release(lease))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    agent: AgentConfig
    llm: LLMConfig | None  # None: start the embedded vLLM engine
    embedded: EmbeddedEngineConfig
    llm_stream_interval_s: float = STREAM_INTERVAL_S  # for the embedded engine's client (LLMConfig's field)


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    url: str  # the endpoint's root URL
    ok: bool
    detail: str  # "answers", "HTTP 503", or why it could not be reached


@dataclass(frozen=True, slots=True)
class Readiness:
    """What /readyz reports. Ready means this process can take sessions: models loaded (they are, once a Runtime
    exists) and the store answers. An LLM that is down does not make it unready — crisis replies and perception need
    no LLM, and a shared LLM outage must not take every pod out of the load balancer — it makes it `degraded`."""

    store: str
    store_ok: bool
    store_writable: bool  # a write lock was taken and let go; False: sessions go on in memory (degraded)
    models: Mapping[str, str]
    llm_model: str
    llm: tuple[EndpointHealth, ...]
    engine: EngineStatus | None  # the embedded vLLM this process supervises, if any

    @property
    def ready(self) -> bool:
        return self.store_ok

    @property
    def status(self) -> Literal["ready", "degraded", "not_ready"]:
        if not self.ready:
            return "not_ready"
        return "ready" if self.store_writable and all(e.ok for e in self.llm) else "degraded"


class Runtime:
    """Owns the long-lived pieces: models, the LLM client, the embedded engine (if any)."""

    def __init__(self, agent: Agent, engine: EmbeddedEngine | None) -> None:
        self.agent = agent
        self.engine = engine

    @property
    def llm_model(self) -> str:
        return self.agent.llm_model

    async def readiness(self) -> Readiness:
        p, inputs = self.agent.pipeline, self.agent.inputs
        try:
            store_ok = await asyncio.wait_for(p.store.ping(), 2.0)
        except Exception:
            store_ok = False
        try:
            writable = store_ok and await asyncio.wait_for(p.store.writable(), 2.0)
        except Exception:
            writable = False
        models = {
            "text": "trained" if p.reader.model is not None else "lexicon",
            "risk": p.reader.risk_name,
            "fusion": type(p.fusion).__name__,
            "voice": "on" if inputs.voice is not None else "off",
            "face": inputs.face.name if inputs.face is not None else "off",
        }
        llm = await asyncio.gather(*(_probe(url, p.llm.config.api_key) for url in p.llm.config.endpoints))
        return Readiness(
            store=self.agent.config.store,
            store_ok=store_ok,
            store_writable=writable,
            models=models,
            llm_model=self.llm_model,
            llm=tuple(llm),
            engine=self.engine.status if self.engine is not None else None,
        )

    async def aclose(self) -> None:
        await self.agent.aclose()
        if self.engine is not None:
            await self.engine.stop()


def resolve_controls_at(setting: Literal["auto", "system", "end"], engine: EmbeddedEngine | None) -> ControlsAt:
    """The prompt layout for this run: the setting, or with "auto" the one the embedded engine's adapter learned."""
    if setting != "auto":
        return setting
    adapter = engine.config.adapter_dir if engine is not None else None
    return adapter_controls_at(adapter) if adapter is not None else "system"


async def load_text_reader(cfg: AgentConfig) -> tuple[TextReader, TextEmotionModel | None]:
    """The text perceiver, warmed up, with what reads risk beside it (the safety classifiers and encoder go with the
    trained model; the lexicon fallback screens by the phrase rules alone); the trained model, if that is what loaded."""
    text = await asyncio.to_thread(load_text_perceiver, cfg)
    await asyncio.to_thread(text.perceive_batch, ["warm-up", "a second, longer warm-up message"])
    model = text if isinstance(text, TextEmotionModel) else None  # the trained model: risk features, attributions
    if model is None:
        return await asyncio.to_thread(TextReader, text, None, None, load_language_id(), None, None), None
    risk = load_risk_classifier(default_risk_classifier_path())
    signs = load_warning_sign_model(default_warning_sign_model_path())
    encoder = await asyncio.to_thread(
        load_sentence_encoder, default_sentence_encoder_dir(cfg.cache_dir), cfg.encoder_threads
    )
    return await asyncio.to_thread(TextReader, text, model, risk, load_language_id(), signs, encoder), model


async def create_runtime(cfg: RuntimeConfig) -> Runtime:
    """Load every model once, start (or reach) the LLM, warm up, and return the wired agent."""
    configure_third_party()
    engine: EmbeddedEngine | None = None
    llm_cfg = cfg.llm
    if llm_cfg is None:
        engine = EmbeddedEngine(cfg.embedded)
        await engine.start()
        llm_cfg = LLMConfig(
            base_url=engine.base_url,
            model=cfg.embedded.model_name,
            api_key=cfg.embedded.api_key,
            stream_interval_s=cfg.llm_stream_interval_s,
        )
    try:
        if not llm_cfg.model or llm_cfg.context_tokens is None:
            llm_cfg = await _served(llm_cfg)
        reader, model = await load_text_reader(cfg.agent)
        voice = await asyncio.to_thread(load_voice_models, cfg.agent) if cfg.agent.voice_enabled else None
        face = await asyncio.to_thread(load_face_perceiver, cfg.agent) if cfg.agent.face_enabled else None
        tts = await asyncio.to_thread(load_synthesizer) if cfg.agent.tts_enabled else None
        a = cfg.agent
        pipeline = Pipeline(
            reader=reader,
            batcher=MicroBatcher(reader.read_batch, max_batch=32),
            fusion=load_fuser(a, model, face),
            tracker=PersonaTracker(),
            policy=load_policy(a.policy_file),
            profiles=load_profiles(),
            llm=LLMClient(llm_cfg),
            store=open_agent_store(a),
            config=TurnConfig(
                max_tokens_cap=a.max_tokens_cap,
                temperature=a.temperature,
                history_chars=a.history_chars,
                summary_chars=a.summary_chars,
                controls_at=resolve_controls_at(a.controls_at, engine),
            ),
            webhook=SafetyWebhook(a.safety_webhook, secret=a.safety_webhook_secret) if a.safety_webhook else None,
            tts=tts,
            chooser=load_strategy_chooser(a.strategy_chooser_file) if a.learned_strategy else None,
        )
        inputs = Inputs(
            voice=voice, voice_config=a.voice, face=face, face_max_fps=a.face_max_fps, face_ttl_s=a.face_ttl_s
        )
        agent = Agent(pipeline=pipeline, inputs=inputs, config=a, leases=open_leases(a.store, a.redis_url))
        await agent.start()
    except BaseException:
        if engine is not None:
            await engine.stop()
        raise
    return Runtime(agent, engine)


def open_agent_store(cfg: AgentConfig) -> SessionStore:
    """The configured session store (the server's, and `persona-agent forget`'s)."""
    retention_s = cfg.retention_days * 86400 if cfg.retention_days else None
    return open_store(cfg.store, cfg.store_path or cfg.cache_dir / "sessions.sqlite3", cfg.redis_url, retention_s)


def load_voice_models(cfg: AgentConfig) -> VoiceModels:
    """VAD, speech-to-text and the prosody head, warmed up (librosa's first call JIT-compiles for seconds)."""
    stt = load_stt(cfg.stt_model, cfg.cache_dir, threads=cfg.stt_threads, window=cfg.stt_window)
    head = default_voice_affect_path()
    encoder = voice_affect_encoder(head)  # the voice head reads this Whisper model's encoder: share it if it is ours
    whisper = (
        None
        if encoder is None
        else stt.model
        if encoder == cfg.stt_model
        else load_stt(encoder, cfg.cache_dir, threads=cfg.stt_threads).model
    )
    models = VoiceModels(
        vad=load_vad(min_silence_ms=cfg.vad_min_silence_ms),
        stt=stt,
        affect=load_voice_affect(head, whisper),
        turn=load_smart_turn(threads=1) if cfg.voice.end_of_turn == "smart_turn" else None,
    )
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)  # 1 s, 220 Hz
    models.affect.perceive(tone)
    models.stt.transcribe(tone)
    models.vad.stream().feed(tone)
    if models.turn is not None:
        models.turn.complete(tone)
    return models


def load_fuser(cfg: AgentConfig, text_model: TextEmotionModel | None, face: FacePerceiver | None) -> Fuser:
    """The trained gated network when the perceivers it was trained on are serving (trained text model, our face
    model); otherwise the untrained confidence-weighted reference, and the log says so."""
    path = default_fusion_path()
    if (
        cfg.fusion == "gated"
        and path.exists()
        and text_model is not None
        and (face is None or isinstance(face, KerasFacePerceiver))
    ):
        return load_gated_fusion(path)
    log.warning(
        "fusion: using the untrained confidence-weighted fusion (gated weights %s, text model %s, face %s)",
        "found" if path.exists() else "missing",
        "trained" if text_model else "lexicon",
        getattr(face, "name", None),
    )
    return ConfidenceFusion()


def load_face_perceiver(cfg: AgentConfig) -> FacePerceiver:
    """Ours (BlazeFace + Keras CNN) by default; deepface's own pipeline on our weights with face_backend="deepface"."""
    if cfg.face_backend == "deepface":
        return load_deepface_perceiver(default_deepface_weights(), cfg.cache_dir / "deepface")
    paths = cfg.face_model_paths or default_face_model_paths()
    for path in paths:
        if not path.exists():
            raise RuntimeError(
                f"no face model at {path}: run `persona-agent train face`, or set PERSONA_FACE_ENABLED=false"
            )
    return load_keras_face_perceiver(paths, threads=cfg.model_threads, detector=cfg.face_detector)


def load_text_perceiver(cfg: AgentConfig) -> TextPerceiver:
    if cfg.text_model == "lexicon":
        return load_lexicon_text_perceiver()
    path = cfg.text_model_dir or default_text_model_dir()
    if not (path / "model.int8.onnx").exists():
        raise RuntimeError(
            f"no trained text model at {path}: run `persona-agent train text`, or set PERSONA_TEXT_MODEL=lexicon"
        )
    return load_text_model(path, threads=cfg.model_threads)


async def _probe(base_url: str, api_key: str) -> EndpointHealth:
    root = base_url.removesuffix("/v1")
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            r = await client.get(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
    except httpx.HTTPError as exc:
        return EndpointHealth(root, False, f"unreachable: {type(exc).__name__}")
    return EndpointHealth(root, r.status_code == 200, "answers" if r.status_code == 200 else f"HTTP {r.status_code}")


async def _served(cfg: LLMConfig) -> LLMConfig:
    """From one GET /models: the model (LLM_MODEL unset: the first the server serves; without it this raises) and its
    context length, as vLLM reports it (max_model_len; None if the server does not say)."""
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            r = await client.get(f"{cfg.base_url}/models", headers={"Authorization": f"Bearer {cfg.api_key}"})
            r.raise_for_status()
            cards = r.json()["data"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        if not cfg.model:
            raise
        return cfg
    model = cfg.model or str(cards[0]["id"])
    context = next(
        (
            int(c["max_model_len"])
            for c in cards
            if isinstance(c, dict) and c.get("id") == model and isinstance(c.get("max_model_len"), int)
        ),
        None,
    )
    return replace(cfg, model=model, context_tokens=cfg.context_tokens if cfg.context_tokens is not None else context)
