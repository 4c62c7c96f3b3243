// The demo page: chat + live panels, built on client.js. Plain DOM, no framework.
import {PersonaClient, ReplyPlayer, startCamera, startMicrophone} from "./client.js";

const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/chat`;
const params = new URLSearchParams(location.search);
let client = null, stopMic = null, stopCam = null, current = null, player = null;
const history = [];  // persona valence/arousal per turn

function bars(el, values, max = 1) {
  el.replaceChildren(...Object.entries(values).map(([k, v]) => {
    const row = document.createElement("div");
    const num = typeof v === "number" ? v : NaN;
    row.innerHTML = `<span>${k}</span><span class="bar"><i style="width:${isNaN(num) ? 0 : Math.max(0, Math.min(1, num / max)) * 100}%"></i></span><span>${isNaN(num) ? v : num.toFixed(2)}</span>`;
    return row;
  }));
}

function line(role, text) {
  const li = document.createElement("li");
  li.className = role; li.textContent = text;
  $("log").append(li); li.scrollIntoView({block: "end"});
  return li;
}

function drawVA() {
  const c = $("va"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#ccd"; g.beginPath(); g.moveTo(0, h / 2); g.lineTo(w, h / 2); g.stroke();
  const n = Math.max(2, history.length);
  for (const [key, color] of [["valence", "#2f9e6e"], ["arousal", "#e8590c"]]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    history.forEach((p, i) => { const x = (i / (n - 1)) * (w - 10) + 5, y = h / 2 - p[key] * (h / 2 - 6); i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke(); g.fillStyle = color; g.fillText(key, key === "valence" ? 6 : 60, 12);
  }
}

function handle(ev) {
  switch (ev.type) {
    case "session.started":
      $("status").textContent = `online · session ${ev.session_id.slice(0, 8)}`; $("status").dataset.state = "online";
      for (const m of ev.history) line(m.role, m.content);
      break;
    case "transcript":
      $("transcript").textContent = (ev.final ? "heard: " : "hearing: ") + ev.text + (ev.backchannel ? " (acknowledgement: the reply goes on)" : "");
      if (ev.final && ev.text && !ev.backchannel) line("user", ev.text);
      break;
    case "response.audio.start": $("speaker").textContent = `speaking (${ev.voice})`; $("speaker").dataset.state = "speaking"; break;
    case "response.audio.done": $("speaker").dataset.sentences = ev.sentences; break;
    case "response.audio.truncated":
      $("speaker").textContent = `stopped after ${(ev.ms / 1000).toFixed(1)} s: history keeps what you heard`;
      $("speaker").dataset.state = "truncated";
      break;
    case "perception": {
      if (ev.modality === "face") $("camera-status").textContent = `camera: face read as ${ev.top}`;
      let box = document.querySelector(`.modality[data-m="${ev.modality}"]`);
      if (!box) { box = document.createElement("div"); box.className = "modality"; box.dataset.m = ev.modality; $("modalities").append(box); }
      box.innerHTML = `<b>${ev.modality}</b>: ${ev.top} <span class="muted">(confidence ${ev.confidence.toFixed(2)})</span><div class="bars"></div>`;
      bars(box.querySelector(".bars"), ev.emotions);
      break;
    }
    case "face.absent": $("camera-status").textContent = "camera: no face in view"; break;
    case "persona":
      bars($("gates"), ev.gates);
      history.push({valence: ev.state.valence, arousal: ev.state.arousal}); drawVA();
      $("persona").textContent = `${ev.state.dominant_emotion}, stress ${ev.state.stress.toFixed(2)}, trend ${ev.state.trend} · fusion: ${ev.fusion_model}`;
      break;
    case "controls": {
      const numeric = Object.fromEntries(Object.entries(ev.controls).filter(([, v]) => typeof v === "number"));
      bars($("controls"), numeric);
      $("rules").replaceChildren(...ev.rules_fired.map((r) => { const li = document.createElement("li"); li.textContent = `${r.rule}: ${r.why}`; return li; }));
      $("rules").insertAdjacentHTML("afterbegin", `<li>strategy: <b>${ev.controls.strategy}</b>, safety: <b>${ev.controls.safety_mode}</b></li>`);
      break;
    }
    case "response.delta":
      if (!current) { current = line("assistant", ""); $("stop").disabled = false; }
      current.textContent += ev.text; current.scrollIntoView({block: "end"});
      break;
    case "response.done": case "response.cancelled": case "response.interrupted":
      if (!current) current = line("assistant", ev.text);
      if (ev.type !== "response.done") current.textContent += " [stopped]";
      if (ev.explanation) $("why").textContent = ev.explanation.summary;
      current.dataset.done = ev.type; current = null; $("stop").disabled = true;
      break;
    case "safety": line("system", `safety layer: ${ev.action} (${ev.level})`); break;
    case "error": line("error", `${ev.code}: ${ev.message}`); break;
    case "closed": $("status").textContent = "offline"; $("status").dataset.state = "offline"; break;
  }
}

$("connect").onclick = async () => {
  if (client) { client.close(); client = null; stopMic?.(); stopCam?.(); $("connect").textContent = "Connect"; return; }
  const consent = {voice: $("consent-voice").checked, face: $("consent-face").checked};
  const voiceReply = $("voice-reply").checked;
  client = new PersonaClient(wsUrl, {key: params.get("key"), profile: $("profile").value, consent, voiceReply});
  client.on("*", handle);
  player = voiceReply ? new ReplyPlayer(client) : null;
  window.replyPlayer = player;  // for the browser test: how much was played
  await client.connect();
  $("connect").textContent = "Disconnect";
  for (const el of $("send").elements) el.disabled = false;
  $("stop").disabled = true;
  if (consent.voice) stopMic = await startMicrophone((pcm) => client.sendAudio(pcm));
  if (consent.face) { $("camera").classList.add("on"); stopCam = await startCamera($("camera"), (jpeg) => client.sendImage(jpeg), 1000); }
};
$("send").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !client) return;
  line("user", text); client.sendText(text); $("text").value = "";
};
$("stop").onclick = () => { client?.cancel(); player?.stop(); };
drawVA();
