"""The trust boundary, over the real server with --require-auth: a conversation belongs to the tenant whose key made
it. Another tenant's resume is answered exactly as an unknown session; one user_id in two tenants keeps two personas;
keys of one tenant share it; export and erasure are tenant-scoped and really erase; one live writer per session."""

from __future__ import annotations

import httpx
import pytest
import websockets

from harness import live_server as launch
from tests.conftest import ARTIFACTS
from tests.keys import create_key
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def tenants(live_server, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.sqlite3"
    store = keys.parent / "sessions.sqlite3"

    def create(name: str, *extra: str) -> str:
        return create_key(keys, name, *extra)

    tokens = {"a": create("a", "--tenant", "acme"), "a2": create("a2", "--tenant", "acme"), "b": create("b")}
    env = {
        "LLM_BASE_URL": f"{live_server.llm_url}/v1",
        "PERSONA_REQUIRE_AUTH": "true",
        "PERSONA_KEYS_PATH": str(keys),
        "PERSONA_STORE": "sqlite",
        "PERSONA_STORE_PATH": str(store),
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": "16",
        "PERSONA_VOICE_ENABLED": "false",
        "PERSONA_FACE_ENABLED": "false",
    }
    with launch(ARTIFACTS / "tenancy", env) as srv:
        yield srv, tokens, store


async def connect(srv, token: str) -> WS:
    return WS(await websockets.connect(srv.ws_url, additional_headers={"Authorization": f"Bearer {token}"}))


async def test_another_tenant_cannot_resume_or_read_a_session(tenants):
    srv, tok, _ = tenants
    a = await connect(srv, tok["a"])
    started = await a.start(user_id="ada")
    events = await a.turn("I have been feeling really anxious about my divorce and my drinking.")
    assert events[-1]["type"] == "response.done"
    await a.close()
    sid = started["session_id"]

    b = await connect(srv, tok["b"])
    await b.send({"type": "session.start", "resume": sid})
    ev = await b.recv()
    assert ev["type"] == "error" and ev["code"] == "unknown_session"
    assert ev["message"] == f"no stored session {sid!r} to resume"  # word for word what a made-up id gets
    await b.send({"type": "session.start", "resume": "0" * 32})
    assert (await b.recv())["message"] == f"no stored session {'0' * 32!r} to resume"
    # Ada in tenant b is a stranger: no persona carried over
    started_b = await b.start(user_id="ada")
    assert started_b.get("persona") is None and started_b["history"] == []
    await b.close()

    # a second key of the same tenant sees the same session and Ada's persona
    a2 = await connect(srv, tok["a2"])
    resumed = await a2.start(resume=sid)
    assert resumed["resumed"] and resumed["history"][0]["content"].startswith("I have been feeling")
    await a2.close()
    a3 = await connect(srv, tok["a2"])
    again = await a3.start(user_id="ada")
    assert again["persona"] is not None and again["persona"]["turns"] >= 1
    await a3.close()


async def test_one_live_writer_per_session_the_newest_takes_over(tenants):
    srv, tok, _ = tenants
    first = await connect(srv, tok["a"])
    sid = (await first.start())["session_id"]
    await first.send({"type": "user.text", "text": "Tell me a long story about the sea, please."})
    await first.until("response.delta")  # a reply is streaming on the first connection
    second = await connect(srv, tok["a2"])  # same tenant, another key: a reconnect from another device
    resumed = await second.start(resume=sid)
    assert resumed["resumed"]
    seen = await first.until("error", timeout=30)
    assert seen[-1]["code"] == "session_taken_over"
    assert any(e["type"] == "response.cancelled" for e in seen)  # the reply in flight stopped, and was kept
    with pytest.raises(websockets.ConnectionClosed):
        await first.recv(timeout=10)
    events = await second.turn("And now a short one.")
    assert events[-1]["type"] == "response.done"
    await second.close()
    third = await connect(srv, tok["a"])
    history = (await third.start(resume=sid))["history"]
    await third.close()
    # every message exactly once, in order: the cut-short reply (marked) between the two user messages
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0]["content"].startswith("Tell me a long story") and history[1].get("interrupted") == "true"
    assert history[2]["content"] == "And now a short one."


async def test_export_and_erase_are_tenant_scoped_and_erase_for_real(tenants):
    import sqlite3

    srv, tok, store = tenants
    a = await connect(srv, tok["a"])
    sid = (await a.start(user_id="grace"))["session_id"]
    await a.turn("My week was long but I managed.")
    await a.close()
    ha, hb = {"Authorization": f"Bearer {tok['a']}"}, {"Authorization": f"Bearer {tok['b']}"}
    assert httpx.get(f"{srv.url}/v1/users/grace/export").status_code == 401
    assert httpx.get(f"{srv.url}/v1/users/grace/export", headers=hb).status_code == 404  # not b's user
    out = httpx.get(f"{srv.url}/v1/users/grace/export", headers=ha)
    assert out.status_code == 200
    body = out.json()
    assert [s["session_id"] for s in body["sessions"]] == [sid] and body["persona"]["turns"] == 1
    assert body["sessions"][0]["messages"][0]["content"] == "My week was long but I managed."
    assert httpx.delete(f"{srv.url}/v1/sessions/{sid}", headers=hb).status_code == 404  # b cannot erase it
    r = httpx.delete(f"{srv.url}/v1/users/grace", headers=ha)
    assert r.status_code == 200 and r.json() == {"erased": True, "sessions": 1}
    assert httpx.get(f"{srv.url}/v1/users/grace/export", headers=ha).status_code == 404
    db = sqlite3.connect(store)
    assert db.execute("SELECT COUNT(*) FROM sessions WHERE id = ?", (sid,)).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (sid,)).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM personas WHERE user_id = 'grace'").fetchone()[0] == 0
    b = await connect(srv, tok["a"])
    await b.send({"type": "session.start", "resume": sid})
    assert (await b.recv())["code"] == "unknown_session"
    await b.close()


async def test_chat_completions_take_the_key_and_keep_the_session_in_its_tenant(tenants):
    srv, tok, _ = tenants
    url = f"{srv.url}/v1/chat/completions"
    body = {"model": "persona-agent", "user": "ada", "messages": [{"role": "user", "content": "Hello again."}]}
    assert httpx.post(url, json=body).status_code == 401
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {tok['a']}"}, timeout=300)
    assert r.status_code == 200, r.text
    ext = r.json()["persona_agent"]
    assert ext["persona"]["state"]["turns"] >= 2  # Ada's persona in tenant acme carried over from the WebSocket turn
    sid = ext["session_id"]
    assert (
        httpx.get(f"{srv.url}/v1/sessions/{sid}", headers={"Authorization": f"Bearer {tok['a2']}"}).status_code == 200
    )
    assert httpx.get(f"{srv.url}/v1/sessions/{sid}", headers={"Authorization": f"Bearer {tok['b']}"}).status_code == 404
