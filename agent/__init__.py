"""The agent: runs conversations through the turn pipeline. This is its face for server/ and the CLI — the runtime,
the live conversation, and the errors they raise. What belongs to one room is taken from that room's own face:
`agent.events` (the wire events), `agent.analysis` (one-off analysis of texts, audio, images), `agent.llm` (the model
client and the embedded engine), `agent.sessions` (records, export, erasure), `agent.metrics` (Prometheus)."""

from agent.conversation import Conversation, FaceUnavailable, InboxFull, UnknownCall, VoiceUnavailable
from agent.frames import ImageBackpressure
from agent.runtime import (
    Agent,
    AgentConfig,
    AnalysisBusy,
    AnalysisUnavailable,
    EndpointHealth,
    Runtime,
    RuntimeConfig,
    SessionInUse,
    UnknownProfile,
    UnknownSession,
    create_runtime,
    load_face_perceiver,
    load_voice_models,
    open_agent_store,
)
from agent.tasks import cancel_and_wait
from agent.voice import AudioBackpressure, VoiceConfig
from perception.face.image import ImageError
from perception.voice.audio import AudioError as InvalidAudio

__all__ = [
    "Agent",
    "AgentConfig",
    "AnalysisBusy",
    "AnalysisUnavailable",
    "AudioBackpressure",
    "Conversation",
    "EndpointHealth",
    "FaceUnavailable",
    "ImageBackpressure",
    "ImageError",
    "InboxFull",
    "InvalidAudio",
    "Runtime",
    "RuntimeConfig",
    "SessionInUse",
    "UnknownCall",
    "UnknownProfile",
    "UnknownSession",
    "VoiceConfig",
    "VoiceUnavailable",
    "cancel_and_wait",
    "create_runtime",
    "load_face_perceiver",
    "load_voice_models",
    "open_agent_store",
]
