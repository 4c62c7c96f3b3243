"""The real server on loopback, a real WebSocket client, the real embedded vLLM engine (SmolLM2-135M on CPU)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


async def test_text_turn_streams_after_perception_persona_controls(live_server):
    ws = await WS.connect(live_server.ws_url)
    started = await ws.start(profile="wellbeing_coach")
    assert started["profile"] == "wellbeing_coach" and started["resumed"] is False
    events = await ws.turn("I'm so happy, I finally passed my driving test!")
    types = [e["type"] for e in events]
    assert types[-1] == "response.done", types
    first_delta = types.index("response.delta")
    for t in ("perception", "persona", "controls"):
        assert t in types[:first_delta], f"{t} must arrive before the first delta: {types}"
    perception = events[types.index("perception")]
    assert perception["modality"] == "text" and abs(sum(perception["emotions"].values()) - 1) < 1e-3
    deltas = [e["text"] for e in events if e["type"] == "response.delta"]
    done = events[-1]
    assert len(deltas) >= 1 and "".join(deltas) == done["text"] and done["text"].strip()
    assert {"perception", "fusion", "policy", "llm_first_token", "total"} <= set(done["timings_ms"])
    assert done["timings_ms"]["llm_first_token"] <= done["timings_ms"]["total"]
    # The token limit really reaches vLLM (LangChain sends it as max_completion_tokens).
    controls = events[types.index("controls")]
    assert controls["sampling"]["max_tokens"] <= live_server.max_tokens
    assert 0 < done["usage"]["completion_tokens"] <= controls["sampling"]["max_tokens"]
    assert done["explanation"]["controls"] == controls["controls"]
    assert "rules_fired" in done["explanation"] and done["explanation"]["gates"]["text"] == 1.0
    await ws.close()


async def test_greedy_replies_are_reproducible(live_server):
    """Temperature 0 (the test server's setting): the same first message in two sessions gives the same reply."""
    replies = []
    for _ in range(2):
        ws = await WS.connect(live_server.ws_url)
        await ws.start(profile="support_agent")
        replies.append((await ws.turn("My order has not arrived yet."))[-1]["text"])
        await ws.close()
    assert replies[0] == replies[1]


async def test_max_tokens_override_limits_generation(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(profile="companion")
    await ws.send({"type": "controls.override", "controls": {"verbosity": 0.0}})
    updated = await ws.recv()
    assert updated["type"] == "controls.updated" and updated["overrides"] == {"verbosity": 0.0}
    events = await ws.turn("Tell me everything you know about the history of tea, in detail.")
    controls = next(e for e in events if e["type"] == "controls")
    assert controls["controls"]["verbosity"] == 0.0 and controls["overridden"] == {"verbosity": 0.0}
    cap = controls["sampling"]["max_tokens"]
    assert cap == 48, cap  # verbosity 0 -> the low end of sampling.yaml's max_tokens range
    done = events[-1]
    assert done["usage"]["completion_tokens"] <= cap
    await ws.close()


async def test_cancel_stops_vllm_generation_and_session_continues(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(profile="companion")
    gen_before = live_server.vllm_metric("vllm:generation_tokens_total")
    await ws.send({"type": "user.text", "text": "Write a long story about a dragon who learns to bake bread."})
    await ws.until("response.delta")
    await ws.send({"type": "response.cancel"})  # at once: a metrics call first could outlast the 64-token reply
    t0 = time.monotonic()
    events = await ws.until("response.cancelled", "response.done")
    assert events[-1]["type"] == "response.cancelled", [
        (e["type"], e.get("code")) for e in events if e["type"] != "response.delta"
    ]
    # vLLM's own count of running requests drops to 0 well before the 64-token reply could have finished.
    while live_server.vllm_metric("vllm:num_requests_running") != 0:
        assert time.monotonic() - t0 < 3.0, "vLLM still generating 3 s after cancel"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    generated = live_server.vllm_metric("vllm:generation_tokens_total") - gen_before
    assert generated < live_server.max_tokens, f"{generated} tokens generated: the request ran to its limit"
    # The session takes the next message.
    after = await ws.turn("Sorry, never mind. How are you?")
    assert after[-1]["type"] == "response.done" and after[-1]["text"]
    await ws.close()


async def test_cancel_without_reply_is_an_error_not_a_crash(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start()
    await ws.send({"type": "response.cancel"})
    ev = await ws.recv()
    assert ev["type"] == "error" and ev["code"] == "no_active_response"
    await ws.close()


BAD_INPUTS = [
    ("{not json", "invalid_json"),
    ('{"type": "user.dance"}', "unknown_type"),
    ('{"type": "user.text"}', "invalid_message"),
    ('{"type": "user.text", "text": ""}', "invalid_message"),
    ('["a", "list"]', "invalid_message"),
    ('{"type": "controls.override", "controls": "loud"}', "invalid_message"),
    ('{"type": "user.text", "text": "' + "a" * 1_000_000 + '"}', "message_too_large"),
    ('{"type": "user.text", "text": "' + "a" * 9000 + '"}', "text_too_long"),
    (bytes(range(256)) * 256, "audio_frame_too_large"),
    (b"\x00\x01\x02", "consent_required"),  # audio without consent.voice in session.start
]


async def test_bad_input_gets_error_and_session_survives(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.send({"type": "session.start", "profile": "pirate"})
    ev = await ws.recv()
    assert ev["type"] == "error" and ev["code"] == "unknown_profile" and "wellbeing_coach" in ev["message"]
    started = await ws.start()
    for raw, code in BAD_INPUTS:
        await ws.send(raw)
        ev = await ws.recv(timeout=10)
        assert ev["type"] == "error" and ev["code"] == code, (raw[:40], ev)
        assert ev["message"] and ev["retryable"] is False
    events = await ws.turn("Hello again, are you still there?")
    assert events[-1]["type"] == "response.done" and events[-1]["text"]
    await ws.send({"type": "session.start"})
    ev = await ws.recv()
    assert ev["code"] == "session_already_started" and started["session_id"] in ev["message"]
    await ws.close()


async def test_messages_sent_while_busy_are_queued_not_dropped(live_server):
    ws = await WS.connect(live_server.ws_url)
    sid = (await ws.start(profile="companion"))["session_id"]
    await ws.send({"type": "user.text", "text": "First question: what is your name?"})
    await ws.send({"type": "user.text", "text": "Second question: what do you like?"})
    first = await ws.until("response.done")
    second = await ws.until("response.done")
    assert first[-1]["response_id"] != second[-1]["response_id"]
    await ws.close()
    # Both user messages and both replies are in the stored history, in order.
    ws = await WS.connect(live_server.ws_url)
    history = (await ws.start(resume=sid))["history"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "First question: what is your name?"),
        ("assistant", first[-1]["text"]),
        ("user", "Second question: what do you like?"),
        ("assistant", second[-1]["text"]),
    ]
    await ws.close()


async def test_a_flooded_inbox_refuses_with_queue_full_and_keeps_the_rest(live_server):
    """Twelve messages at once: one runs, eight wait (the bound), the others are refused with a retryable
    queue_full; each message is either answered and stored once, or refused — none is silently lost."""
    ws = await WS.connect(live_server.ws_url)
    sid = (await ws.start(profile="companion"))["session_id"]
    texts = [f"Message number {i}: say hi." for i in range(12)]
    for t in texts:
        await ws.send({"type": "user.text", "text": t})
    refused, done = [], []
    while len(refused) + len(done) < len(texts):
        ev = await ws.recv(timeout=180)
        if ev["type"] == "error":
            assert ev["code"] == "queue_full" and ev["retryable"], ev
            refused.append(ev)
        elif ev["type"] == "response.done":
            done.append(ev)
    assert len(done) == 9 and len(refused) == 3  # 1 running + MAX_PENDING_TURNS (8) waiting
    await ws.close()
    ws = await WS.connect(live_server.ws_url)
    users = [m["content"] for m in (await ws.start(resume=sid))["history"] if m["role"] == "user"]
    assert users == texts[:9]
    await ws.close()


async def test_resume_returns_history(live_server):
    ws = await WS.connect(live_server.ws_url)
    sid = (await ws.start(profile="companion"))["session_id"]
    events = await ws.turn("My cat is called Miso.")
    reply = events[-1]["text"]
    await ws.close()
    ws = await WS.connect(live_server.ws_url)
    resumed = await ws.start(resume=sid)
    assert resumed["resumed"] is True and resumed["session_id"] == sid and resumed["profile"] == "companion"
    assert [m["role"] for m in resumed["history"]] == ["user", "assistant"]
    assert resumed["history"][0]["content"] == "My cat is called Miso." and resumed["history"][1]["content"] == reply
    await ws.close()
    ws = await WS.connect(live_server.ws_url)
    await ws.send({"type": "session.start", "resume": "does-not-exist"})
    ev = await ws.recv()
    assert ev["type"] == "error" and ev["code"] == "unknown_session"
    await ws.close()


def test_health_ready_and_schema(live_server):
    health = httpx.get(f"{live_server.url}/healthz").json()
    assert health["status"] == "ok" and health["pid"] == live_server.pid  # the worker that answered
    ready = httpx.get(f"{live_server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["store"] == "sqlite" and ready["store_ok"]
    assert [(e["url"], e["ok"]) for e in ready["llm"]] == [(live_server.llm_url, True)]
    assert ready["engine"]["state"] == "up" and ready["models"]["text"] == "trained"
    schema = httpx.get(f"{live_server.url}/v1/schema").json()
    assert schema["endpoint"] == "/v1/chat" and "client" in schema and "server" in schema


async def test_explain_attaches_word_attributions(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start()
    await ws.send({"type": "user.text", "text": "thank you so much for your help", "explain": True})
    events = await ws.until("response.done")
    perception = next(e for e in events if e["type"] == "perception")
    attr = perception["evidence"]["attributions"]
    assert attr["method"] == "occlusion" and attr["label"] == "gratitude"
    assert [t["token"] for t in attr["tokens"]] == "thank you so much for your help".split()
    assert perception["model"] == "minilm-l6-goemotions-int8" and perception["top"] == "joy"
    await ws.close()


async def test_messages_from_many_sessions_are_batched(live_server):
    conns = [await WS.connect(live_server.ws_url) for _ in range(8)]
    for ws in conns:
        await ws.start()
    await asyncio.gather(
        *(ws.send({"type": "user.text", "text": f"I am happy number {i}"}) for i, ws in enumerate(conns))
    )
    perceptions = [(await ws.until("perception"))[-1] for ws in conns]
    for ws in conns:
        await ws.send({"type": "response.cancel"})
    sizes = [p["evidence"]["batch_size"] for p in perceptions]
    assert max(sizes) > 1, sizes
    for ws in conns:
        await ws.close()


def test_rest_analyze_text(live_server):
    r = httpx.post(f"{live_server.url}/v1/analyze/text", json={"texts": ["thank you so much!", "I'm furious"]})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["text"] for x in res] == ["thank you so much!", "I'm furious"]
    assert "gratitude" in res[0]["predicted"] and res[1]["emotions"]["anger"] == max(res[1]["emotions"].values())
    for body, status in [({"texts": []}, 422), ({"texts": ["x" * 9000]}, 422), ({"text": "hi"}, 422), ("nope", 422)]:
        r = httpx.post(f"{live_server.url}/v1/analyze/text", json=body)
        assert r.status_code == status and r.json()["detail"], (body, r.text)


async def test_risk_message_gets_fixed_reply_and_never_reaches_the_llm(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(profile="companion", locale="en-US")
    prompts_before = live_server.vllm_metric("vllm:prompt_tokens_total")
    events = await ws.turn("I can't do this anymore. I'm going to kill myself tonight.")
    types = [e["type"] for e in events]
    safety = events[types.index("safety")]
    assert (
        safety["risk"] is True and safety["level"] == "crisis" and safety["action"] == "crisis_reply" and safety["rule"]
    )
    controls = events[types.index("controls")]
    assert controls["controls"]["safety_mode"] == "crisis" and "safety_layer" in [
        r["rule"] for r in controls["rules_fired"]
    ]
    done = events[-1]
    assert done["type"] == "response.done" and done["finish_reason"] == "safety"
    assert "988" in done["text"] and done["usage"]["completion_tokens"] is None
    assert live_server.vllm_metric("vllm:prompt_tokens_total") == prompts_before, "the risk message reached the LLM"
    # overrides cannot switch the safety layer off
    await ws.send({"type": "controls.override", "controls": {"safety_mode": "normal"}})
    assert "safety_mode" in (await ws.recv())["rejected"]
    # an idiom is answered by the model as usual
    events = await ws.turn("Haha this exam is killing me, any study tips?")
    assert "safety" not in [e["type"] for e in events] and events[-1]["finish_reason"] != "safety"
    await ws.close()


async def test_a_spanish_crisis_is_a_crisis_and_an_unscreened_language_is_flagged(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(profile="companion", locale="es-ES")
    events = await ws.turn("Ya no puedo más, esta noche me voy a quitar la vida.")
    safety = next(e for e in events if e["type"] == "safety")
    assert safety["level"] == "crisis" and safety["action"] == "crisis_reply" and safety["rule"]
    assert safety["language"] == "es" and safety["language_screened"] is True
    assert events[-1]["finish_reason"] == "safety"
    await ws.close()
    ws = await WS.connect(live_server.ws_url)
    await ws.start(profile="companion")
    events = await ws.turn("Oggi sono andato al mercato con mia sorella e abbiamo comprato delle arance.")
    safety = next(e for e in events if e["type"] == "safety")  # Italian: no phrase rules, and the operator is told
    assert safety["action"] == "language_unsupported" and safety["language"] == "it"
    assert safety["language_screened"] is False and safety["risk"] is False
    assert events[-1]["type"] == "response.done" and events[-1]["finish_reason"] != "safety"
    await ws.close()


async def test_the_embedded_engine_answers_through_the_shipped_adapter(live_server):
    """The default install serves the control-following adapter (merged into the weights) and asks for it by name."""
    models = [
        m["id"]
        for m in httpx.get(f"{live_server.llm_url}/v1/models", timeout=10, headers=live_server.llm_headers).json()[
            "data"
        ]
    ]
    assert models == ["persona"], models
    ws = await WS.connect(live_server.ws_url)
    await ws.start(profile="wellbeing_coach")
    done = (await ws.turn("I finally finished my thesis after three years, I can't believe it!"))[-1]
    assert done["type"] == "response.done" and done["model"] == "persona" and done["text"].strip()
    assert done["explanation"]["safety"]["level"] == "none"  # a happy message is not answered under caution
    await ws.close()
    crisis = await WS.connect(live_server.ws_url)
    await crisis.start()
    done = (await crisis.turn("I want to kill myself tonight."))[-1]
    assert done["model"] == "fixed:crisis_reply" and done["finish_reason"] == "safety"
    await crisis.close()
