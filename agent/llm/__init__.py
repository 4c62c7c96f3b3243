"""The language model: the streaming client over an OpenAI-compatible API (vLLM, via LangChain) and the supervisor of
the embedded vLLM engine this process may run. The scripts that run in the engine's own virtualenv live apart, in
llmenv/."""

from agent.llm.client import (
    STREAM_INTERVAL_S,
    TRANSPORT_ERRORS,
    LLMClient,
    LLMConfig,
    LLMStatusError,
    OpenAICompatibleChat,
    StreamStats,
)
from agent.llm.engine import (
    EmbeddedEngine,
    EmbeddedEngineConfig,
    EngineStatus,
    adapter_controls_at,
    default_adapter_dir,
    default_llm_python,
    embedded_model_dir,
    lora_rank,
    resolve_dtype,
)

__all__ = [
    "STREAM_INTERVAL_S",
    "TRANSPORT_ERRORS",
    "EmbeddedEngine",
    "EmbeddedEngineConfig",
    "EngineStatus",
    "LLMClient",
    "LLMConfig",
    "LLMStatusError",
    "OpenAICompatibleChat",
    "StreamStats",
    "adapter_controls_at",
    "default_adapter_dir",
    "default_llm_python",
    "embedded_model_dir",
    "lora_rank",
    "resolve_dtype",
]
