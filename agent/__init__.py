"""The agent: composes the pipeline and runs conversations. server/ uses only what is exported here."""
from agent.agent import Agent, AgentConfig, AnalysisUnavailable, load_face_perceiver, load_voice_models, Runtime, RuntimeConfig, SessionInUse, UnknownProfile, UnknownSession, create_runtime
from agent.analysis import (
    FaceAnalysis, TextAnalysis, VoiceAnalysis, analyze_face, analyze_texts, analyze_voice, assess_texts, load_risk_model, load_text_model,
)
from agent.conversation import Conversation, ImageBackpressure, VoiceUnavailable
from perception.face.image import ImageError
from agent.voice import AudioBackpressure, VoiceConfig
from perception.voice.audio import AudioError as InvalidAudio
from agent.engine import EmbeddedEngine, EmbeddedEngineConfig, default_llm_python
from agent.events import (
    ControlsEvent, ControlsUpdated, ErrorEvent, Event, FaceAbsent, PerceptionEvent, PersonaEvent, ResponseCancelled, ResponseDelta,
    ResponseDone, ResponseInterrupted, SafetyEvent, SessionStarted, SpeechStarted, TranscriptEvent,
)
from agent.llm import LLMConfig

__all__ = [
    "Agent", "AgentConfig", "AnalysisUnavailable", "AudioBackpressure", "InvalidAudio", "VoiceConfig", "VoiceUnavailable", "ControlsEvent", "ControlsUpdated", "Conversation", "EmbeddedEngineConfig", "ErrorEvent",
    "Event", "LLMConfig", "PerceptionEvent", "PersonaEvent", "ResponseCancelled", "ResponseDelta", "ResponseDone", "ResponseInterrupted", "SafetyEvent", "SpeechStarted", "TranscriptEvent",
    "Runtime", "RuntimeConfig", "SessionStarted", "TextAnalysis", "VoiceAnalysis", "assess_texts", "load_risk_model", "analyze_texts", "analyze_voice", "load_voice_models", "load_text_model", "SessionInUse", "UnknownProfile", "UnknownSession", "create_runtime",
    "default_llm_python", "EmbeddedEngine", "FaceAbsent", "FaceAnalysis", "ImageBackpressure", "ImageError", "analyze_face",
    "load_face_perceiver",
]
