"""Choosing among vLLM replicas, with values: least requests in flight first, ties in turn, a failed endpoint sits
out its cooldown unless every endpoint has failed."""

from __future__ import annotations

import time

from agent.llm import LLMClient, LLMConfig


def client() -> LLMClient:
    return LLMClient(
        LLMConfig(base_url="http://a:1/v1", model="m", replicas=("http://b:1/v1", "http://c:1/v1"), cooldown_s=10)
    )


def test_ties_go_round_robin_and_busy_endpoints_are_avoided():
    c = client()
    assert [c.choose().url[7] for _ in range(6)] == list("abcabc")
    c.endpoints[0].in_flight, c.endpoints[1].in_flight = 3, 1
    assert c.choose().url.startswith("http://c")
    c.endpoints[2].in_flight = 2
    assert c.choose().url.startswith("http://b")


def test_failed_endpoint_sits_out_its_cooldown():
    c = client()
    c.endpoints[1].failed_at = time.monotonic()
    assert {c.choose().url[7] for _ in range(6)} == {"a", "c"}
    for e in c.endpoints:
        e.failed_at = time.monotonic()
    assert {c.choose().url[7] for _ in range(6)} == {"a", "b", "c"}  # all down: keep trying rather than refuse
    c.endpoints[1].failed_at -= 11
    assert c.choose().url.startswith("http://b")
