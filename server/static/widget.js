// <persona-chat endpoint="wss://host/v1/chat" key="pub_..." profile="support_agent" voice-reply></persona-chat>
// A publishable key (keys create --scope chat). To carry a signed-in user's persona, add user-id="..." and
// user-token="..." (signed by your backend with its secret key: persona_client.user_token).
// One script tag, one element: a self-contained chat box (shadow DOM, no styles leak in or out).
import {PersonaClient, ReplyPlayer} from "./client.js";

class PersonaChat extends HTMLElement {
  async connectedCallback() {
    const root = this.attachShadow({mode: "open"});
    root.innerHTML = `<style>
      :host { display: block; font: 14px/1.4 system-ui, sans-serif; border: 1px solid #ccd; border-radius: 10px; width: 340px; background: #fff; }
      ol { list-style: none; margin: 0; padding: .5rem; height: 260px; overflow-y: auto; }
      li { margin: .3rem 0; padding: .4rem .6rem; border-radius: 8px; white-space: pre-wrap; }
      li.user { background: #dfe9ff; margin-left: 2rem; } li.assistant { background: #eef0f3; margin-right: 2rem; }
      li.error { background: #ffe1e1; } form { display: flex; border-top: 1px solid #ccd; }
      input { flex: 1; border: 0; padding: .6rem; } button { border: 0; background: #4b7bec; color: #fff; padding: 0 1rem; }
      .mood { font-size: 12px; color: #667; padding: .2rem .6rem; }</style>
      <ol part="log"></ol><div class="mood" part="mood"></div>
      <form><input placeholder="Message…" aria-label="message"><button>Send</button></form>`;
    const log = root.querySelector("ol"), input = root.querySelector("input"), mood = root.querySelector(".mood");
    const add = (role, text) => { const li = document.createElement("li"); li.className = role; li.textContent = text; log.append(li); log.scrollTop = log.scrollHeight; return li; };
    let current = null;
    const client = new PersonaClient(this.getAttribute("endpoint"), {key: this.getAttribute("key"), profile: this.getAttribute("profile"),
                                                                   userId: this.getAttribute("user-id"), userToken: this.getAttribute("user-token"),
                                                                   voiceReply: this.hasAttribute("voice-reply")});
    this.player = this.hasAttribute("voice-reply") ? new ReplyPlayer(client) : null;  // speaks; stops at once on barge-in
    client.on("response.delta", (e) => { current = current || add("assistant", ""); current.textContent += e.text; log.scrollTop = log.scrollHeight; })
      .on("response.done", (e) => { (current || add("assistant", e.text)).dataset.done = "1"; current = null;
        this.dispatchEvent(new CustomEvent("persona-reply", {detail: e, bubbles: true, composed: true})); })
      .on("persona", (e) => { mood.textContent = `reading you as ${e.state.dominant_emotion}`; })
      .on("error", (e) => add("error", `${e.code}: ${e.message}`));
    root.querySelector("form").onsubmit = (e) => { e.preventDefault(); const t = input.value.trim(); if (!t) return; add("user", t); client.sendText(t); input.value = ""; };
    this.client = client;
    await client.connect();
    this.setAttribute("ready", "");
  }
  disconnectedCallback() { this.player?.stop(); this.client?.close(); }
}
customElements.define("persona-chat", PersonaChat);
