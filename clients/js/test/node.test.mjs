// The package's client in Node (20.10+, with --experimental-websocket; Node 22 has WebSocket built in) against a live
// backend: PERSONA_WS_URL (the Python test suite starts the server and runs this). One turn, streamed.
import {test} from "node:test";
import assert from "node:assert/strict";
import {PersonaClient} from "persona-agent-client";

test("one turn over the WebSocket, streamed, with the persona and the explanation", {timeout: 300_000}, async () => {
  const url = process.env.PERSONA_WS_URL;
  assert.ok(url, "set PERSONA_WS_URL to a running backend's /v1/chat");
  const c = new PersonaClient(url, {profile: "companion"});
  const started = await c.connect();
  assert.equal(started.type, "session.started");
  assert.match(c.sessionId, /^[0-9a-f]{32}$/);
  let streamed = "";
  const seen = new Set();
  const done = new Promise((resolve, reject) => {
    c.on("*", (e) => seen.add(e.type));
    c.on("response.delta", (e) => { streamed += e.text; });
    c.on("response.done", resolve);
    c.on("error", (e) => reject(new Error(`${e.code}: ${e.message}`)));
  });
  c.sendText("We got the keys to our first flat this morning!");
  const reply = await done;
  c.close();
  assert.ok(reply.text.trim().length > 0);
  assert.equal(streamed, reply.text);
  for (const t of ["perception", "persona", "controls", "response.done"]) assert.ok(seen.has(t), t);
  assert.equal(typeof reply.explanation, "object");
});
