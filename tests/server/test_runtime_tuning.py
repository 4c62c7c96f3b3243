"""The server's runtime tuning, read once from the environment: the garbage collector after start-up, and the LLM
stream's interval (which reaches both an external LLM's client and the embedded engine's)."""

from __future__ import annotations

import gc

from server.app import tune_gc
from server.settings import Settings


def test_defaults_and_the_environment_reach_the_runtime_config(monkeypatch):
    s = Settings()
    assert s.gc_freeze and s.gc_thresholds == (10_000, 20, 20)
    assert s.runtime_config().llm_stream_interval_s == 0.03

    monkeypatch.setenv("PERSONA_GC_FREEZE", "false")
    monkeypatch.setenv("PERSONA_GC_THRESHOLDS", "[700,10,10]")
    monkeypatch.setenv("PERSONA_LLM_STREAM_INTERVAL_MS", "0")
    monkeypatch.setenv("LLM_BASE_URL", "http://gpu-a:8001/v1,http://gpu-b:8001/v1")
    s = Settings()
    assert not s.gc_freeze and s.gc_thresholds == (700, 10, 10)
    rc = s.runtime_config()
    assert rc.llm is not None and rc.llm.stream_interval_s == 0.0 and rc.llm_stream_interval_s == 0.0
    assert rc.llm.replicas == ("http://gpu-b:8001/v1",)


def test_a_negative_stream_interval_is_refused(monkeypatch):
    import pydantic
    import pytest

    monkeypatch.setenv("PERSONA_LLM_STREAM_INTERVAL_MS", "-5")
    with pytest.raises(pydantic.ValidationError, match="llm_stream_interval_ms"):
        Settings()


def test_tune_gc_freezes_what_exists_and_sets_the_thresholds():
    before = gc.get_threshold()
    try:
        loaded = [[i] for i in range(1000)]  # stands for what start-up loaded
        assert any(o is loaded for o in gc.get_objects())
        tune_gc(True, (10_000, 20, 20))
        assert gc.get_freeze_count() >= 1000
        assert not any(o is loaded for o in gc.get_objects())  # out of every collection from now on
        assert gc.get_threshold() == (10_000, 20, 20)
        gc.unfreeze()
        tune_gc(False, (700, 10, 10))
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == (700, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
