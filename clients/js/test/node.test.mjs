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
  let reply;
  try {
    reply = await done;
  } finally {
    c.close(); // a failed turn must not leave the socket holding node open until the test's timeout
  }
  assert.ok(reply.text.trim().length > 0);
  assert.equal(streamed, reply.text);
  for (const t of ["perception", "persona", "controls", "response.done"]) assert.ok(seen.has(t), t);
  assert.equal(typeof reply.explanation, "object");
});

test("a tool call answered with sendToolResult continues the reply", {timeout: 300_000}, async () => {
  const url = process.env.PERSONA_WS_URL;
  const tool = {type: "function", function: {name: "get_order", description: "Look up an order by its number",
    parameters: {type: "object", properties: {order_id: {type: "string"}}, required: ["order_id"]}}};
  const c = new PersonaClient(url, {profile: "support_agent", tools: [tool], toolChoice: "required"});
  await c.connect();
  const calls = [];
  const dones = [];
  const finished = new Promise((resolve, reject) => {
    c.on("response.tool_call", (e) => {
      calls.push(e);
      c.sendToolResult(e.call_id, JSON.stringify({status: "shipped", carrier: "DHL"}));
    });
    c.on("response.done", (e) => { dones.push(e); if (e.finish_reason !== "tool_calls") resolve(); });
    c.on("error", (e) => reject(new Error(`${e.code}: ${e.message}`)));
  });
  c.sendText("Where is my order 4471?");
  try {
    await finished;
  } finally {
    c.close();
  }
  assert.equal(calls[0].name, "get_order");
  assert.equal(typeof JSON.parse(calls[0].arguments), "object");
  assert.equal(dones[0].finish_reason, "tool_calls");
  assert.ok(dones.at(-1).text.trim().length > 0);
});
