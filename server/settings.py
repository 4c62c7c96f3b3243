"""Settings, read once at start-up from the environment (and CLI flags), then passed down as typed config."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent import (
    AgentConfig, EmbeddedEngineConfig, LLMConfig, RuntimeConfig, VoiceConfig, default_adapter_dir, default_llm_python,
    lora_rank,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERSONA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for log shippers
    default_profile: str = "wellbeing_coach"
    policy_file: Path | None = None
    text_model: Literal["trained", "lexicon"] = "trained"
    text_model_dir: Path | None = None  # default: the artifact shipped in perception/models/text_emotion
    model_threads: int = 1  # intra-op threads per perception model
    voice_enabled: bool = True
    stt_model: Literal["tiny.en", "base"] = "tiny.en"
    vad_min_silence_ms: int = 600
    barge_in_min_ms: int = 150
    face_enabled: bool = True
    face_backend: Literal["keras", "deepface"] = "keras"
    face_model_path: Path | None = None  # default: perception/models/face_expression.weights.h5
    face_max_fps: float = 5.0
    store: Literal["sqlite", "redis", "memory"] = "sqlite"  # sessions, messages and per-user personas
    redis_url: str | None = None  # store=redis: where (several workers or machines share it)
    fusion: Literal["gated", "confidence"] = "gated"  # the trained network, or the untrained reference
    store_path: Path | None = None  # default: <cache_dir>/sessions.sqlite3
    retention_days: float | None = None  # erase sessions and personas not written for this long (default: keep;
    # Redis keys expire after 30 days unless this is set)

    # The edge: API keys (required beyond loopback unless turned off explicitly), browser origins, idle sessions.
    require_auth: bool | None = None  # None: required when host is not a loopback address
    keys_path: Path | None = None  # default: <cache_dir>/keys.sqlite3
    allowed_origins: list[str] = []  # browser origins allowed besides the server's own ("*" for any)
    idle_timeout_s: float = 600.0  # close a WebSocket with no client event (and no reply running) for this long

    # External LLM (production: a vLLM server on GPUs; several replicas as a comma-separated list, each request goes to
    # the least busy healthy one). Unset: the embedded vLLM-on-CPU engine is started.
    llm_base_url: str | None = Field(None, validation_alias=AliasChoices("LLM_BASE_URL", "PERSONA_LLM_BASE_URL"))
    llm_model: str | None = Field(None, validation_alias=AliasChoices("LLM_MODEL", "PERSONA_LLM_MODEL"))
    llm_api_key: str = Field("EMPTY", validation_alias=AliasChoices("LLM_API_KEY", "PERSONA_LLM_API_KEY"))
    llm_timeout_s: float = 60.0
    llm_temperature: float | None = None  # fix the temperature for every reply (0 = greedy, reproducible)
    llm_max_tokens: int | None = None  # cap on any reply's length, whatever the verbosity signal says

    embedded_llm_python: Path | None = None  # default: .venv-llm/bin/python beside our virtualenv
    embedded_llm_port: int = 8100
    embedded_llm_log: Path | None = None
    # The control-following LoRA the embedded engine serves: `shipped` (prompts/adapters/persona), `none` (the plain
    # base model), or a peft adapter folder of your own (`persona-agent train adapter --out DIR`).
    embedded_llm_adapter: str = "shipped"
    embedded_llm_adapter_mode: Literal["merged", "lora"] = "merged"  # merged weights, or vLLM's --enable-lora
    cache_dir: Path = Path.home() / ".cache" / "persona-agent"

    def runtime_config(self) -> RuntimeConfig:
        llm = None
        if self.llm_base_url:
            urls = [u.strip().rstrip("/") for u in self.llm_base_url.split(",") if u.strip()]
            llm = LLMConfig(base_url=urls[0], model=self.llm_model or "", api_key=self.llm_api_key,
                            timeout_s=self.llm_timeout_s, replicas=tuple(urls[1:]))
        return RuntimeConfig(
            agent=AgentConfig(default_profile=self.default_profile, max_tokens_cap=self.llm_max_tokens,
                              temperature=self.llm_temperature, policy_file=self.policy_file,
                              text_model=self.text_model, text_model_dir=self.text_model_dir,
                              model_threads=self.model_threads, voice_enabled=self.voice_enabled,
                              stt_model=self.stt_model, vad_min_silence_ms=self.vad_min_silence_ms,
                              cache_dir=self.cache_dir, voice=VoiceConfig(barge_in_min_ms=self.barge_in_min_ms),
                              face_enabled=self.face_enabled, face_backend=self.face_backend,
                              face_model_path=self.face_model_path, face_max_fps=self.face_max_fps,
                              store=self.store, store_path=self.store_path, fusion=self.fusion,
                              redis_url=self.redis_url, retention_days=self.retention_days),
            llm=llm,
            embedded=EmbeddedEngineConfig(
                python=self.embedded_llm_python or default_llm_python(),
                model_dir=self.cache_dir / "models" / "smollm2-135m-instruct",
                port=self.embedded_llm_port,
                log_file=self.embedded_llm_log,
                **self._adapter(),
            ),
        )

    def _adapter(self) -> dict[str, object]:
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
        return self.keys_path or self.cache_dir / "keys.sqlite3"
