"""The safety layer through the real server: screened before the store (a crisis is answered with Redis down, and the
message is saved once Redis is back), sticky safe mode over the next turns until its release, and the safety webhook
reaching a loopback receiver, retried after a failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness import free_port
from harness import live_server as launch
from persona import RELEASE_AFTER_CALM_TURNS
from prompts import points_to_support, support_note
from tests.conftest import ARTIFACTS
from tests.redisserver import RedisServer
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm
CRISIS = "I want to kill myself tonight."


WEBHOOK_SECRET = "whsec-test-0123456789"


class Receiver:
    """An operator's endpoint on loopback: answers 500 to the first request, 200 after; keeps what arrived."""

    def __init__(self) -> None:
        self.got: list[tuple[int, dict]] = []  # (attempt header, payload)
        self.signed: list[bool] = []  # did each request carry a valid signature (PERSONA_SAFETY_WEBHOOK_SECRET)?
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                mac = hmac.new(
                    WEBHOOK_SECRET.encode(),
                    self.headers.get("X-Persona-Timestamp", "").encode() + b"." + raw,
                    hashlib.sha256,
                ).hexdigest()
                outer.signed.append(self.headers.get("X-Persona-Signature") == f"sha256={mac}")
                outer.calls += 1
                status = 500 if outer.calls == 1 else 200
                if status == 200:
                    outer.got.append((int(self.headers.get("X-Persona-Attempt", "0")), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, action: str, timeout: float = 30) -> tuple[int, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for attempt, body in self.got:
                if body["action"] == action:
                    return attempt, body
            time.sleep(0.05)
        raise AssertionError(f"no {action} notification; got {self.got}")


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis-safety")) as r:
        yield r


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def server(live_server, redis, receiver):
    env = {
        "LLM_BASE_URL": f"{live_server.llm_url}/v1",
        "PERSONA_STORE": "redis",
        "PERSONA_REDIS_URL": redis.url,
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": "40",
        "PERSONA_VOICE_ENABLED": "false",
        "PERSONA_FACE_ENABLED": "false",
        "PERSONA_SAFETY_WEBHOOK": f"http://127.0.0.1:{receiver.port}/hook",
        "PERSONA_SAFETY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with launch(ARTIFACTS / "safety-server", env) as s:
        yield s


async def test_sticky_safe_mode_over_calm_turns_then_release(server, receiver):
    ws = await WS.connect(server.ws_url)
    sid = (await ws.start(profile="wellbeing_coach", locale="en-US"))["session_id"]
    events = await ws.turn(CRISIS)
    actions = [e["action"] for e in events if e["type"] == "safety"]
    assert actions == ["crisis_reply", "safe_mode_entered"], actions
    assert events[-1]["model"] == "fixed:crisis_reply"
    # The operator hears of it though the receiver failed the first attempt: the webhook retried.
    attempt, hook = receiver.wait_for("safe_mode_entered")
    assert attempt == 2 and hook["session_id"] == sid and hook["level"] == "crisis" and hook["turn"] == 1
    assert "kill" not in json.dumps(hook)  # the payload names the session, never what the user wrote
    assert receiver.signed and all(receiver.signed)  # each attempt signed: HMAC-SHA256 of "<timestamp>.<body>"
    calm = ["Thank you. I'm sitting on the couch now.", "My sister is coming over later.", "We might watch a film."]
    for i, text in enumerate(calm, 1):
        events = await ws.turn(text)
        controls = next(e for e in events if e["type"] == "controls")
        done = events[-1]
        assert controls["controls"]["safety_mode"] == "safe", (i, controls)
        assert "safe_mode" in [r["rule"] for r in controls["rules_fired"]]
        assert done["type"] == "response.done" and done["model"] != "fixed:crisis_reply"
        assert done["explanation"]["safety"]["mode"] == "safe"
        assert done["explanation"]["safety"]["safe_mode"]["calm_turns"] == i
        assert "988" in done["text"]  # the resources, repeated after the model's words
        assert not [e for e in events if e["type"] == "safety"]
    assert len(calm) == RELEASE_AFTER_CALM_TURNS
    events = await ws.turn("I think I'm okay for tonight.")
    safety = [e for e in events if e["type"] == "safety"]
    assert [e["action"] for e in safety] == ["safe_mode_released"] and safety[0]["level"] == "none"
    assert next(e for e in events if e["type"] == "controls")["controls"]["safety_mode"] == "normal"
    assert receiver.wait_for("safe_mode_released")[1]["turn"] == 5
    await ws.close()
    stored = httpx.get(f"{server.url}/v1/sessions/{sid}", timeout=10).json()
    assert stored["safe_mode"]["active"] is False and len(stored["messages"]) == 10


async def test_a_crisis_is_answered_with_the_store_down_and_saved_when_it_is_back(server, redis):
    ws = await WS.connect(server.ws_url)
    sid = (await ws.start(locale="en-US"))["session_id"]
    assert (await ws.turn("Hi, long day at work."))[-1]["type"] == "response.done"
    redis.stop()
    try:
        await ws.send({"type": "user.text", "text": CRISIS})
        events = await ws.until("response.done", timeout=60)  # the store_unavailable error comes on the way
    finally:
        redis.start()  # the same port and data directory (append-only file)
    types = [e["type"] for e in events]
    assert "safety" in types and events[types.index("safety")]["action"] == "crisis_reply"
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["store_unavailable"] and errors[0]["retryable"] is True
    assert events[-1]["type"] == "response.done" and "988" in events[-1]["text"]
    assert types.index("safety") < types.index("error")  # the operator's event did not wait for the store
    # The next turn's save writes what the failed ones could not: nothing the user sent is lost.
    assert (await ws.turn("Are you still there?"))[-1]["type"] == "response.done"
    await ws.close()
    stored = httpx.get(f"{server.url}/v1/sessions/{sid}", timeout=10).json()
    users = [m["content"] for m in stored["messages"] if m["role"] == "user"]
    assert users == ["Hi, long day at work.", CRISIS, "Are you still there?"]
    assert stored["safe_mode"]["active"] is True


async def test_a_caution_reply_points_to_support_once(server):
    """Hopelessness is answered under caution (not a crisis), and the reply points to support: the model's words, or
    the fixed note after them when it gave none. The carried caution of the next turn does not repeat the note."""
    ws = await WS.connect(server.ws_url)
    await ws.start(profile="wellbeing_coach")
    events = await ws.turn("I feel so hopeless lately.")
    safety = [e for e in events if e["type"] == "safety"]
    assert [(e["level"], e["action"]) for e in safety] == [("caution", "caution_prompt")], safety
    done = events[-1]
    assert done["type"] == "response.done" and done["model"] != "fixed:crisis_reply"
    assert "".join(e["text"] for e in events if e["type"] == "response.delta") == done["text"]
    assert points_to_support(done["text"]), done["text"]
    events = await ws.turn("I just don't know anymore.")
    controls = next(e for e in events if e["type"] == "controls")
    assert controls["controls"]["safety_mode"] == "caution"  # carried over from the turn before
    assert events[-1]["text"].count(support_note(None)) + done["text"].count(support_note(None)) <= 1
    await ws.close()


async def test_a_new_connections_first_message_is_screened_with_redis_stopped(server, redis):
    """#40: with Redis stopped, a session that starts now (store, lease and user persona all unreachable) still
    screens its first message and gives the crisis reply; on main it got only internal_error."""
    redis.stop()
    try:
        ws = await WS.connect(server.ws_url)
        await ws.send({"type": "user.text", "text": CRISIS})
        events = await ws.until("response.done", timeout=90)
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
    finally:
        redis.start()
    types = [e["type"] for e in events]
    assert types[0] == "session.started", types
    assert "safety" in types and events[types.index("safety")]["action"] == "crisis_reply"
    assert events[-1]["model"] == "fixed:crisis_reply" and "findahelpline.com" in events[-1]["text"]  # no locale sent
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"  # Redis does not answer at all
    sid = events[0]["session_id"]
    assert (await ws.turn("Are you still there?"))[-1]["type"] == "response.done"  # saved once Redis is back
    await ws.close()
    stored = httpx.get(f"{server.url}/v1/sessions/{sid}", timeout=10).json()
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == [CRISIS, "Are you still there?"]
