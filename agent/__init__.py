"""The agent: composes the pipeline and runs conversations. server/ uses only what is exported here."""
from agent.agent import Agent, AgentConfig, Runtime, RuntimeConfig, UnknownProfile, UnknownSession, create_runtime
from agent.analysis import TextAnalysis, analyze_texts, load_text_model
from agent.conversation import Conversation
from agent.engine import EmbeddedEngineConfig, default_llm_python
from agent.events import (
    ControlsEvent, ControlsUpdated, ErrorEvent, Event, PerceptionEvent, PersonaEvent, ResponseCancelled, ResponseDelta,
    ResponseDone, SessionStarted,
)
from agent.llm import LLMConfig

__all__ = [
    "Agent", "AgentConfig", "ControlsEvent", "ControlsUpdated", "Conversation", "EmbeddedEngineConfig", "ErrorEvent",
    "Event", "LLMConfig", "PerceptionEvent", "PersonaEvent", "ResponseCancelled", "ResponseDelta", "ResponseDone",
    "Runtime", "RuntimeConfig", "SessionStarted", "TextAnalysis", "analyze_texts", "load_text_model", "UnknownProfile", "UnknownSession", "create_runtime",
    "default_llm_python",
]
