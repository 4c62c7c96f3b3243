// persona-agent JS client: speaks only the published protocol (GET /v1/schema). No dependencies.
//   const c = new PersonaClient("ws://host:8000/v1/chat", {key, profile, consent: {voice: true, face: true}});
//   c.on("response.delta", e => ...); await c.connect(); c.sendText("hi");
//   Spoken replies: new PersonaClient(url, {voiceReply: true}) and new ReplyPlayer(c) plays them.
//   Tools: new PersonaClient(url, {tools: [{type: "function", function: {name, description, parameters}}]});
//   c.on("response.tool_call", e => c.sendToolResult(e.call_id, JSON.stringify(run(e.name, e.arguments))));
//   the reply continues, under the same controls, once every call of it is answered.
export class PersonaClient {
  // With a publishable key: userToken (signed by your backend) vouches for userId; resume needs resumeToken, which
  // session.started hands out (kept here as this.resumeToken for a reconnect).
  constructor(url, {key = null, profile = null, userId = null, userToken = null, consent = {}, resume = null,
                    resumeToken = null, voiceReply = false, tools = null, toolChoice = null} = {}) {
    Object.assign(this, {url, key, profile, userId, userToken, consent, resume, resumeToken, voiceReply, tools,
                         toolChoice});
    this.handlers = new Map();
    this.ws = null;
    this.sessionId = null;
  }
  on(type, fn) { (this.handlers.get(type) || this.handlers.set(type, []).get(type)).push(fn); return this; }
  _fire(ev) { for (const t of [ev.type, "*"]) for (const fn of this.handlers.get(t) || []) fn(ev); }
  connect() {
    // Browsers cannot set headers on a WebSocket: the key rides as a subprotocol next to persona.v1.
    const protocols = ["persona.v1", ...(this.key ? [`key.${this.key}`] : [])];
    this.ws = new WebSocket(this.url, protocols);
    this.ws.binaryType = "arraybuffer";
    return new Promise((resolve, reject) => {
      this.ws.onerror = () => reject(new Error("connection failed"));
      this.ws.onclose = (e) => this._fire({type: "closed", code: e.code, reason: e.reason});
      this.ws.onmessage = (m) => {
        const ev = JSON.parse(m.data);
        if (ev.type === "session.started") { this.sessionId = ev.session_id; this.resumeToken = ev.resume_token; resolve(ev); }
        this._fire(ev);
      };
      this.ws.onopen = () => this.send({type: "session.start", profile: this.profile || undefined,
        user_id: this.userId || undefined, user_token: this.userToken || undefined, resume: this.resume || undefined,
        resume_token: this.resumeToken || undefined, voice_reply: !!this.voiceReply,
        tools: this.tools || undefined, tool_choice: this.toolChoice || undefined,
        consent: {text: true, voice: !!this.consent.voice, face: !!this.consent.face}});
    });
  }
  send(ev) { this.ws.send(JSON.stringify(ev)); }
  sendText(text, explain = false) { this.send({type: "user.text", text, explain}); }
  sendAudio(int16) { this.ws.send(int16.buffer); }            // PCM16 mono 16 kHz, as a binary frame
  endAudio() { this.send({type: "user.audio.end"}); }
  sendImage(base64Jpeg, explain = false) { this.send({type: "user.image", image: base64Jpeg, explain}); }
  cancel() { this.send({type: "response.cancel"}); }
  override(controls) { this.send({type: "controls.override", controls}); }
  setTools(tools, toolChoice = null) { this.send({type: "tools.update", tools, tool_choice: toolChoice || undefined}); }
  sendToolResult(callId, output) { this.send({type: "tool.result", call_id: callId, output}); }
  close() { this.ws && this.ws.close(); }
}

// Spoken replies → the speakers, sentence after sentence as they arrive (Web Audio). On barge-in
// (response.interrupted) or stop() the sound stops at once and the server is told how much was heard
// (response.audio.played), so the conversation history keeps exactly those words.
export class ReplyPlayer {
  constructor(client) {
    this.client = client; this.ctx = null; this.id = null; this.rate = 22050; this.parts = []; this.done = false;
    client.on("response.audio.start", (e) => this._start(e))
      .on("response.audio", (e) => this._play(e))
      .on("response.audio.done", (e) => { if (e.response_id === this.id) { this.done = true; this._maybeFinished(); } })
      .on("response.interrupted", (e) => this.stop(e.response_id));
  }
  _start(e) {
    this.stop();
    this.ctx = this.ctx || new AudioContext();
    Object.assign(this, {id: e.response_id, rate: e.sample_rate, parts: [], done: false, end: this.ctx.currentTime});
  }
  _play(e) {
    if (e.response_id !== this.id) return;
    const bytes = Uint8Array.from(atob(e.audio), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
    const buf = this.ctx.createBuffer(1, pcm.length, this.rate), ch = buf.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    const src = this.ctx.createBufferSource();
    src.buffer = buf; src.connect(this.ctx.destination);
    const at = Math.max(this.end, this.ctx.currentTime);
    src.start(at); this.end = at + buf.duration;
    src.onended = () => this._maybeFinished();
    this.parts.push({src, at, duration: buf.duration});
  }
  get playing() { return !!this.id && this.parts.some((p) => this.ctx.currentTime < p.at + p.duration); }
  // Milliseconds of this reply's audio heard so far (gaps between sentences not counted).
  playedMs() {
    if (!this.ctx) return 0;
    const now = this.ctx.currentTime;
    return 1000 * this.parts.reduce((s, p) => s + Math.max(0, Math.min(p.duration, now - p.at)), 0);
  }
  _maybeFinished() {
    if (this.id && this.done && !this.playing) {
      this.client.send({type: "response.audio.played", response_id: this.id, ms: this.playedMs(), interrupted: false});
      this.id = null;
    }
  }
  stop(responseId = null) {
    if (!this.id || (responseId && responseId !== this.id)) return;
    const ms = this.playedMs(), id = this.id;
    this.id = null;
    for (const p of this.parts) { p.src.onended = null; try { p.src.stop(); } catch { /* not started */ } }
    this.parts = [];
    this.client.send({type: "response.audio.played", response_id: id, ms, interrupted: true});
  }
}

// Microphone → 16 kHz PCM16 frames of 20 ms, through an AudioWorklet (no ScriptProcessor).
const WORKLET = `
class Pcm16 extends AudioWorkletProcessor {
  constructor() { super(); this.ratio = sampleRate / 16000; this.acc = 0; this.sum = 0; this.n = 0; this.buf = []; }
  process(inputs) {
    const ch = inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {            // decimate by averaging each output sample's inputs (box low-pass)
      this.sum += ch[i]; this.n += 1; this.acc += 1;
      if (this.acc >= this.ratio) { this.acc -= this.ratio; this.buf.push(this.sum / this.n); this.sum = 0; this.n = 0; }
    }
    while (this.buf.length >= 320) {
      const out = new Int16Array(320);
      for (let i = 0; i < 320; i++) out[i] = Math.max(-1, Math.min(1, this.buf[i])) * 32767;
      this.buf = this.buf.slice(320);
      this.port.postMessage(out, [out.buffer]);
    }
    return true;
  }
}
registerProcessor("pcm16", Pcm16);`;

export async function startMicrophone(onFrame) {
  const stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: true}});
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([WORKLET], {type: "text/javascript"})));
  const node = new AudioWorkletNode(ctx, "pcm16");
  node.port.onmessage = (e) => onFrame(e.data);
  ctx.createMediaStreamSource(stream).connect(node);
  return () => { stream.getTracks().forEach((t) => t.stop()); ctx.close(); };
}

// Camera → one JPEG (base64, no data: prefix) every `everyMs`.
export async function startCamera(video, onFrame, everyMs = 1000) {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  const timer = setInterval(() => {
    if (!video.videoWidth) return;
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    onFrame(canvas.toDataURL("image/jpeg", 0.8).split(",", 2)[1]);
  }, everyMs);
  return () => { clearInterval(timer); stream.getTracks().forEach((t) => t.stop()); };
}
