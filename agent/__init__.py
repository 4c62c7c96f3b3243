"""The agent: runs conversations through the turn pipeline. server/ and the CLI use only what is exported here."""
from agent.runtime import (
    Agent, AgentConfig, AnalysisBusy, AnalysisUnavailable, EndpointHealth, Runtime, RuntimeConfig, SessionInUse, UnknownProfile, UnknownSession,
    create_runtime, load_face_perceiver, load_voice_models, open_agent_store,
)
from agent.analysis import (
    FaceAnalysis, TextAnalysis, VoiceAnalysis, analyze_face, analyze_texts, analyze_voice, assess_texts, load_risk_features, load_risk_model, load_warning_signs,
)
from agent.conversation import MAX_PENDING_TURNS, Conversation, FaceUnavailable, InboxFull, VoiceUnavailable
from agent.llm.engine import (
    DEFAULT_CACHE_DIR, EmbeddedEngine, EmbeddedEngineConfig, EngineStatus, default_adapter_dir, default_llm_python, embedded_model_dir,
    adapter_controls_at, lora_rank,
)
from agent.events import (
    EVENTS, PROTOCOL_VERSION, ControlsEvent, ControlsUpdated, ErrorEvent, Event, FaceAbsent, PerceptionEvent, PersonaEvent,
    ResponseCancelled, ResponseDelta, ResponseDone, ResponseInterrupted, SafetyEvent, SessionStarted, SpeechStarted,
    TranscriptEvent,
)
from agent.frames import ImageBackpressure
from agent.llm import STREAM_INTERVAL_S, LLMConfig
from agent.metrics import ACTIVE_SESSIONS, ERRORS, FRAMES, REGISTRY, scrape_registry, watch_tasks, worker_exited
from agent.sessions.store import LOCAL_TENANT, SessionErased, SessionExport, UserExport
from agent.voice import AudioBackpressure, VoiceConfig
from agent.sessions import redis_client
from agent.tasks import cancel_and_wait
from perception.face.image import ImageError
from perception.text_model import load_text_model
from perception.voice.audio import AudioError as InvalidAudio

__all__ = [
    "ACTIVE_SESSIONS", "DEFAULT_CACHE_DIR", "ERRORS", "EVENTS", "FRAMES", "LOCAL_TENANT", "PROTOCOL_VERSION", "REGISTRY",
    "Agent", "AgentConfig", "AnalysisBusy", "AnalysisUnavailable", "AudioBackpressure", "ControlsEvent", "ControlsUpdated", "Conversation",
    "EmbeddedEngine", "EmbeddedEngineConfig", "EndpointHealth", "EngineStatus", "ErrorEvent", "Event", "FaceAbsent", "FaceAnalysis", "FaceUnavailable",
    "ImageBackpressure", "ImageError", "InboxFull", "InvalidAudio", "MAX_PENDING_TURNS", "LLMConfig", "STREAM_INTERVAL_S", "PerceptionEvent", "PersonaEvent", "ResponseCancelled",
    "ResponseDelta", "ResponseDone", "ResponseInterrupted", "Runtime", "RuntimeConfig", "SafetyEvent", "SessionInUse",
    "SessionErased", "SessionExport", "SessionStarted", "SpeechStarted", "TextAnalysis", "TranscriptEvent", "UnknownProfile", "UnknownSession", "UserExport",
    "VoiceAnalysis", "VoiceConfig", "VoiceUnavailable", "analyze_face", "analyze_texts", "analyze_voice", "assess_texts", "cancel_and_wait",
    "create_runtime", "default_adapter_dir", "default_llm_python", "embedded_model_dir", "load_face_perceiver", "load_risk_features", "load_risk_model", "load_warning_signs",
    "load_text_model", "load_voice_models", "adapter_controls_at", "lora_rank", "open_agent_store", "redis_client", "scrape_registry", "watch_tasks", "worker_exited",
]
