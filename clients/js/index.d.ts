// Types of client.js (the module the backend serves at /static/client.js). Event shapes come from protocol.d.ts,
// which build.mjs generates from the published schema.
import type {Client, ClientEvent, ServerEvent} from "./protocol.js";
export type {Client, ClientEvent, Limits, Server, ServerEvent} from "./protocol.js";

/** A server event by its `type`, e.g. EventOf<"response.done">. */
export type EventOf<T extends ServerEvent["type"]> = Extract<ServerEvent, {type: T}>;
/** The client's own "closed" notice (not a protocol event). */
export interface Closed { type: "closed"; code: number; reason: string; }

export interface ClientOptions {
  key?: string | null;
  profile?: string | null;
  userId?: string | null;
  resume?: string | null;
  consent?: {voice?: boolean; face?: boolean};
  /** Speak the replies too: response.audio.start / response.audio / response.audio.done (play them with ReplyPlayer). */
  voiceReply?: boolean;
  /** Functions the model may call (OpenAI's tool shape): each call comes as response.tool_call; answer it with
   * sendToolResult, and the reply continues once every call of it is answered. */
  tools?: Client.ToolSpec[] | null;
  toolChoice?: Client.SessionStart["tool_choice"];
}

export declare class PersonaClient {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  sessionId: string | null;
  on<T extends ServerEvent["type"]>(type: T, fn: (event: EventOf<T>) => void): this;
  on(type: "closed", fn: (event: Closed) => void): this;
  on(type: "*", fn: (event: ServerEvent | Closed) => void): this;
  connect(): Promise<EventOf<"session.started">>;
  send(event: ClientEvent): void;
  sendText(text: string, explain?: boolean): void;
  sendAudio(pcm16: Int16Array): void;
  endAudio(): void;
  sendImage(base64Jpeg: string, explain?: boolean): void;
  cancel(): void;
  override(controls: Record<string, number | string>): void;
  /** The functions offered from the next turn on. */
  setTools(tools: Client.ToolSpec[], toolChoice?: Client.SessionStart["tool_choice"]): void;
  /** What a function returned for one response.tool_call, as text. */
  sendToolResult(callId: string, output: string): void;
  close(): void;
}

/** Browser only: plays spoken replies as they arrive; stops at once on barge-in (response.interrupted) or stop(), and
 * tells the server how much was heard (response.audio.played), so history keeps exactly those words. */
export declare class ReplyPlayer {
  constructor(client: PersonaClient);
  readonly playing: boolean;
  /** Milliseconds of the current reply's audio played so far. */
  playedMs(): number;
  stop(responseId?: string | null): void;
}

/** Browser only: PCM16 mono 16 kHz frames from the microphone (an AudioWorklet). */
export declare function startMicrophone(onFrame: (pcm16: Int16Array) => void): Promise<() => void>;
/** Browser only: a JPEG (base64) from the camera every `everyMs`. */
export declare function startCamera(video: HTMLVideoElement, onFrame: (base64Jpeg: string) => void,
                                    everyMs?: number): Promise<() => void>;
