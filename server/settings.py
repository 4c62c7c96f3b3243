"""Settings, read once at start-up from the environment (and CLI flags), then passed down as typed config.

The agent's options are declared once, as `AgentConfig` (agent/runtime.py): each of its fields is a setting of the same
name (PERSONA_<NAME>), the voice options flattened (PERSONA_BARGE_IN_MIN_MS, ...), two of them under the LLM's names
(PERSONA_LLM_MAX_TOKENS, PERSONA_LLM_TEMPERATURE). This module adds what only the edge knows: address, auth, logs,
the LLM endpoints and the embedded engine."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_type_hints

from pydantic import AliasChoices, Field, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent import AgentConfig, RuntimeConfig, VoiceConfig
from agent.llm import (
    STREAM_INTERVAL_S,
    EmbeddedEngineConfig,
    LLMConfig,
    default_adapter_dir,
    default_llm_python,
    embedded_model_dir,
    lora_rank,
)

RENAMED = {"max_tokens_cap": "llm_max_tokens", "temperature": "llm_temperature"}  # AgentConfig field -> setting
NESTED = {"voice": VoiceConfig}  # an AgentConfig field whose own fields are settings


def _settings_fields(config: type, renamed: dict[str, str]) -> dict[str, Any]:
    hints = get_type_hints(config)
    out: dict[str, Any] = {}
    for f in fields(config):
        if f.name in NESTED:
            out.update(_settings_fields(NESTED[f.name], {}))
            continue
        default: Any = f.default
        if f.default_factory is not MISSING:
            default = f.default_factory()
        out[renamed.get(f.name, f.name)] = (hints[f.name], default)
    return out


if TYPE_CHECKING:
    _AgentSettings = BaseSettings
else:
    _AgentSettings = create_model("_AgentSettings", __base__=BaseSettings, **_settings_fields(AgentConfig, RENAMED))


class Settings(_AgentSettings):
    model_config = SettingsConfigDict(env_prefix="PERSONA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for log shippers

    # The edge: API keys (required beyond loopback unless turned off explicitly), browser origins, idle sessions.
    require_auth: bool | None = None  # None: required when host is not a loopback address
    keys_path: Path | None = None  # default: <cache_dir>/keys.sqlite3
    allowed_origins: list[str] = []  # browser origins allowed besides the server's own ("*" for any)
    # Host names this server answers for (DNS rebinding). Empty: loopback names only while auth is off; any with auth.
    allowed_hosts: list[str] = []
    # On SIGTERM: open requests and sockets get this long, then are cancelled, and shutdown (engine stop) runs.
    shutdown_grace_s: int = 10
    key_recheck_s: float = 30.0  # open connections re-check their key this often: a revoked key's sockets end
    idle_timeout_s: float = 600.0  # close a WebSocket with no client event (and no reply running) for this long
    # permessage-deflate on the WebSocket: off by default — a reply streams as many ~100-byte deltas, which deflate
    # barely shrinks but costs CPU per message on both ends (bench/load.py); turn it on for slow links.
    ws_compression: bool = False
    # The garbage collector, tuned for a long-lived server once its models are loaded: everything loaded at start-up is
    # frozen out of collection (gc.freeze), and a young collection waits for 10,000 new objects instead of 700. With
    # Python's defaults a full collection walked every loaded model's objects and stalled the event loop ~300 ms each
    # time, and collections took ~4.8 s of the loop in 50 s at 100-150 turns/s (bench/load.py; docs/benchmarks.md, issue #20).
    # PERSONA_GC_FREEZE=false and PERSONA_GC_THRESHOLDS='[700,10,10]' restore Python's behaviour.
    gc_freeze: bool = True
    gc_thresholds: tuple[int, int, int] = (10_000, 20, 20)

    # External LLM (production: a vLLM server on GPUs; several replicas as a comma-separated list, each request goes to
    # the least busy healthy one). Unset: the embedded vLLM-on-CPU engine is started.
    llm_base_url: str | None = Field(None, validation_alias=AliasChoices("LLM_BASE_URL", "PERSONA_LLM_BASE_URL"))
    llm_model: str | None = Field(None, validation_alias=AliasChoices("LLM_MODEL", "PERSONA_LLM_MODEL"))
    llm_api_key: str = Field("EMPTY", validation_alias=AliasChoices("LLM_API_KEY", "PERSONA_LLM_API_KEY"))
    llm_timeout_s: float = 60.0
    # Tokens that arrive within this long of the last piece passed on go out together (LLMConfig.stream_interval_s);
    # 0: every read from the LLM's stream is passed on at once.
    llm_stream_interval_ms: float = Field(STREAM_INTERVAL_S * 1000, ge=0)

    embedded_llm_python: Path | None = None  # default: .venv-llm/bin/python beside our virtualenv
    embedded_llm_port: int = 8100
    embedded_llm_log: Path | None = None
    # The control-following LoRA the embedded engine serves: `shipped` (prompts/adapters/persona), `none` (the plain
    # base model), or a peft adapter folder of your own (`persona-agent train adapter --out DIR`).
    embedded_llm_adapter: str = "shipped"
    embedded_llm_adapter_mode: Literal["merged", "lora"] = "merged"  # merged weights, or vLLM's --enable-lora
    embedded_llm_dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 where the CPU has it natively
    embedded_llm_api_key: str | None = Field(None, repr=False)  # the key the embedded vLLM requires; default: random

    def agent_config(self) -> AgentConfig:
        """The one place AgentConfig is built from settings."""
        values: dict[str, Any] = {
            f.name: getattr(self, RENAMED.get(f.name, f.name)) for f in fields(AgentConfig) if f.name not in NESTED
        }
        nested: dict[str, Any] = {
            name: cls(**{f.name: getattr(self, f.name) for f in fields(cls)}) for name, cls in NESTED.items()
        }
        return AgentConfig(**values, **nested)

    def runtime_config(self) -> RuntimeConfig:
        agent = self.agent_config()
        key: dict[str, Any] = {"api_key": self.embedded_llm_api_key} if self.embedded_llm_api_key else {}
        llm = None
        if self.llm_base_url:
            urls = [u.strip().rstrip("/") for u in self.llm_base_url.split(",") if u.strip()]
            llm = LLMConfig(
                base_url=urls[0],
                model=self.llm_model or "",
                api_key=self.llm_api_key,
                timeout_s=self.llm_timeout_s,
                replicas=tuple(urls[1:]),
                stream_interval_s=self.llm_stream_interval_ms / 1000,
            )
        return RuntimeConfig(
            agent=agent,
            llm=llm,
            llm_stream_interval_s=self.llm_stream_interval_ms / 1000,
            embedded=EmbeddedEngineConfig(
                python=self.embedded_llm_python or default_llm_python(),
                model_dir=embedded_model_dir(agent.cache_dir),
                port=self.embedded_llm_port,
                log_file=self.embedded_llm_log,
                dtype=self.embedded_llm_dtype,
                **key,
                **self._adapter(),
            ),
        )

    def _adapter(self) -> dict[str, Any]:
        if self.embedded_llm_adapter == "none":
            return {}
        path = default_adapter_dir() if self.embedded_llm_adapter == "shipped" else Path(self.embedded_llm_adapter)
        if path is None:
            return {}
        if not (path / "adapter_config.json").exists():
            raise ValueError(f"PERSONA_EMBEDDED_LLM_ADAPTER: no peft adapter (adapter_config.json) in {path}")
        return {"adapter_dir": path, "max_lora_rank": lora_rank(path), "adapter_mode": self.embedded_llm_adapter_mode}

    def auth_required(self) -> bool:
        from server.auth import is_loopback

        return self.require_auth if self.require_auth is not None else not is_loopback(self.host)

    def key_store_path(self) -> Path:
        return self.keys_path or self.agent_config().cache_dir / "keys.sqlite3"
