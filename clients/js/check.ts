// Compiled by `npm run check` (tsc --noEmit): uses the generated protocol types the way an application would, so a
// schema change that breaks them fails the build. Not shipped.
import {PersonaClient, ReplyPlayer, type ClientEvent, type EventOf, type ServerEvent} from "./index.js";

const start: ClientEvent = {type: "session.start", profile: "companion", user_id: "ada",
                            consent: {text: true, voice: false, face: false}};
const text: ClientEvent = {type: "user.text", text: "I finally finished my thesis!", explain: false};
const c = new PersonaClient("ws://127.0.0.1:8000/v1/chat", {profile: "companion", consent: {face: true}});
c.on("response.delta", (e) => { const piece: string = e.text; void piece; })
 .on("response.done", (e: EventOf<"response.done">) => { const m: string = e.model; void m; void e.explanation; })
 .on("safety", (e) => { const level: "none" | "caution" | "crisis" = e.level; void level; })
 .on("perception", (e) => { const v: number = e.valence; void v; })
 .on("*", (e) => { void e.type; });
function describe(e: ServerEvent): string {
  switch (e.type) {
    case "persona": return `gates ${Object.keys(e.gates).join(",")}`;
    case "error": return `${e.code}: ${e.message}`;
    default: return e.type;
  }
}
const spoken = new PersonaClient("ws://127.0.0.1:8000/v1/chat", {voiceReply: true});
const player = new ReplyPlayer(spoken);
spoken.on("response.audio", (e) => { const b64: string = e.audio; const at: number = e.start_ms; void b64; void at; })
  .on("response.audio.truncated", (e) => { const heard: string = e.text; void heard; });
const played: ClientEvent = {type: "response.audio.played", response_id: "r1", ms: player.playedMs(), interrupted: true};
const lookup = {type: "function" as const, function: {name: "order_status", description: "Look an order up",
  parameters: {type: "object", properties: {order_id: {type: "string"}}, required: ["order_id"]}}};
const agent = new PersonaClient("ws://127.0.0.1:8000/v1/chat", {profile: "support_agent", tools: [lookup]});
agent.on("response.tool_call", (e) => { const args: string = e.arguments; agent.sendToolResult(e.call_id, args); });
agent.setTools([lookup], "required");
const result: ClientEvent = {type: "tool.result", call_id: "call_1", output: "{\"status\": \"shipped\"}"};
void start; void text; void describe; void played; void result;
// @ts-expect-error: a field the schema does not have is refused
const wrong: ClientEvent = {type: "user.text", text: "hi", colour: "blue"};
void wrong;
