"""Latency breakdown of a text turn through the real server and the real LLM, against peers in the same run: the same
LLM called directly with the very prompt the backend sent on each turn (rendered again from that turn's `controls`
event), so the difference is what our pipeline adds. Three peers take the gap apart:

- direct: raw OpenAI-compatible streaming (httpx), greedy, the same token cap — no pipeline, no LangChain;
- direct+sampling: the same plus the backend's sampling extras (min_p, repetition_penalty, presence_penalty, usage);
- langchain: the backend's own LLM client (LangChain ChatOpenAI, as the server streams), no pipeline.

A warm-up round first sends every message once through the backend and each peer, so vLLM's prefix cache holds every
prompt for every arm alike (a chat's system prompt is cached in production too); the arms then take turns.

    .venv/bin/python bench/text_turn_latency.py [--turns 24] [--url ws://host:port/v1/chat --llm http://host:port]

Without --url it starts `persona-agent serve` with the embedded vLLM (SmolLM2-135M on CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from agent.llm import LLMClient, LLMConfig  # noqa: E402
from bench.stats import machine, row  # noqa: E402
from harness import live_server  # noqa: E402
from persona import ControlSignals  # noqa: E402
from prompts import Prompt, load_profiles, render  # noqa: E402
from prompts.render import Sampling  # noqa: E402

MESSAGES = [
    "I'm so happy, I finally passed my driving test!",
    "My boss yelled at me again today and I'm furious.",
    "I can't sleep, I keep worrying about my exam tomorrow.",
    "What's a good way to start running when you're out of shape?",
    "My dog died last week and the house feels empty.",
    "Wow, I did not expect to get the job!",
    "Can you explain how to reset my password?",
    "Honestly everything is fine, just a normal day.",
]


BACKEND = ("overhead_before_llm", "perception", "fusion", "policy", "llm_first_token", "first_delta", "total")


async def backend_turn(ws_url: str, text: str, out: dict[str, list], prompts: list[Prompt]) -> None:
    """One turn on a fresh session (no history, so every arm's prompt is the same size); the prompt it sent, rendered
    again from its controls event, goes to `prompts`."""
    async with websockets.connect(ws_url, max_size=8 * 1024 * 1024) as ws:
        await ws.send(json.dumps({"type": "session.start", "profile": "companion"}))
        await ws.recv()
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "user.text", "text": text}))
        first, controls = None, None
        while True:
            ev = json.loads(await ws.recv())
            if ev["type"] == "controls":
                controls = ev
            if ev["type"] == "response.delta" and first is None:
                first = time.perf_counter()
            if ev["type"] == "error":
                raise RuntimeError(ev)
            if ev["type"] == "response.done":
                break
        t_done = time.perf_counter()
    assert first is not None and controls is not None, "no reply text or no controls event"
    for k in BACKEND:
        out[k].append(ev["timings_ms"][k])
    out["model"].append(ev["model"])
    out["client_first_delta"].append((first - t0) * 1000)
    out["client_done"].append((t_done - t0) * 1000)
    profile = load_profiles()["companion"]
    s = controls["sampling"]
    prompt = render(profile, ControlSignals().with_values(controls["controls"]), [], text)
    prompts.append(
        Prompt(
            prompt.messages,
            Sampling(
                temperature=float(s["temperature"]),
                max_tokens=int(s["max_tokens"]),
                presence_penalty=float(s["presence_penalty"]),
                extra={k: float(v) for k, v in s.items() if k not in ("temperature", "max_tokens", "presence_penalty")},
            ),
        )
    )


async def direct_turn(
    client: httpx.AsyncClient, llm_url: str, model: str, prompt: Prompt, sampling: bool
) -> tuple[float, float]:
    """(first content token, stream end) in ms, raw streaming; with `sampling`, the backend's extras too."""
    body: dict[str, object] = {
        "model": model,
        "stream": True,
        "temperature": prompt.sampling.temperature,
        "max_completion_tokens": prompt.sampling.max_tokens,
        "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
    }
    if sampling:
        body |= {
            "presence_penalty": prompt.sampling.presence_penalty,
            **prompt.sampling.extra,
            "stream_options": {"include_usage": True},
        }
    t0 = time.perf_counter()
    first = None
    async with client.stream("POST", f"{llm_url}/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    first = time.perf_counter()
    assert first is not None, "no content"
    return (first - t0) * 1000, (time.perf_counter() - t0) * 1000


async def langchain_turn(llm: LLMClient, prompt: Prompt) -> tuple[float, float]:
    """(first content token, stream end) in ms through the backend's LLM client (LangChain ChatOpenAI)."""
    t0 = time.perf_counter()
    first = None
    async for _ in llm.stream(prompt):
        first = first or time.perf_counter()
    assert first is not None, "no content"
    return (first - t0) * 1000, (time.perf_counter() - t0) * 1000


async def measure(
    ws_url: str, llm_url: str, turns: int, llm_key: str = "EMPTY"
) -> tuple[dict[str, list], dict[str, list[float]]]:
    b: dict[str, list] = {k: [] for k in (*BACKEND, "client_first_delta", "client_done", "model")}
    peers: dict[str, list[float]] = {
        f"{arm}_{k}": [] for arm in ("direct", "direct_sampling", "langchain") for k in ("first_token", "total")
    }
    warm: dict[str, list] = {k: [] for k in b}
    prompts: list[Prompt] = []
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {llm_key}"}) as client:
        model = None
        llm = None
        try:
            for i in range(len(MESSAGES) + turns):
                text = MESSAGES[i % len(MESSAGES)]
                target = b if i >= len(MESSAGES) else warm  # the first round warms every prompt into the prefix cache
                await backend_turn(ws_url, text, target, prompts)
                if model is None:
                    model = warm["model"][0]
                    llm = LLMClient(LLMConfig(base_url=f"{llm_url}/v1", model=model, api_key=llm_key))
                assert llm is not None
                prompt = prompts[-1]
                arms = ["direct", "direct_sampling", "langchain"]
                arms = arms[i % 3 :] + arms[: i % 3]  # each arm goes first as often as the others
                for arm in arms:
                    if arm == "langchain":
                        first, total = await langchain_turn(llm, prompt)
                    else:
                        first, total = await direct_turn(
                            client, llm_url, model, prompt, sampling=arm == "direct_sampling"
                        )
                    if target is b:
                        peers[f"{arm}_first_token"].append(first)
                        peers[f"{arm}_total"].append(total)
        finally:
            if llm is not None:
                await llm.aclose()
    assert len(set(b["model"])) == 1, set(b["model"])
    return b, peers


def report(b: dict[str, list], d: dict[str, list[float]], turns: int, max_tokens: int) -> None:
    print(f"text-turn latency — {turns} turns, replies capped at {max_tokens} tokens, greedy decoding")
    print(machine())
    print("through persona-agent (server-side timings from response.done):")
    for k, what in [
        ("overhead_before_llm", "perception+fusion+persona+policy+render, before the LLM request"),
        ("perception", "text perception"),
        ("fusion", "fusion"),
        ("policy", "persona+policy+render"),
        ("llm_first_token", "LLM request sent -> first token"),
        ("first_delta", "LLM request sent -> first text past the output guard"),
        ("total", "message received -> reply done"),
    ]:
        print("  " + row(k, b[k], what=what))
    print("  client view (send -> event over WebSocket):")
    print("  " + row("client_first_delta", b["client_first_delta"], what="send -> first response.delta"))
    print("  " + row("client_done", b["client_done"], what="send -> response.done"))
    print("peers: the same LLM, the same prompt the backend sent on that turn, no pipeline:")
    for arm, what in [
        ("direct", "raw streaming, greedy"),
        ("direct_sampling", "raw streaming + the backend's sampling extras"),
        ("langchain", "the backend's LangChain client"),
    ]:
        print("  " + row(f"{arm}_first_token", d[f"{arm}_first_token"], what=f"{what}: request -> first content token"))
        print("  " + row(f"{arm}_total", d[f"{arm}_total"], what=f"{what}: request -> stream end"))
    guard = [a - b for a, b in zip(b["first_delta"], b["llm_first_token"])]
    print("  " + row("guard_delay", guard, what="model's first token -> first text released by the output guard"))
    med = statistics.median
    print(f"model: {b['model'][0]}")
    print(
        f"first_delta_ms={med(b['client_first_delta']):.1f} direct_first_token_ms={med(d['direct_first_token']):.1f} "
        f"overhead_ms={med(b['overhead_before_llm']):.1f}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--url", help="ws URL of a running server (default: start one)")
    ap.add_argument("--llm", help="root URL of the LLM the running server uses (for the direct peer)")
    args = ap.parse_args()
    if args.url:
        assert args.llm, "--llm is needed with --url"
        b, d = await measure(args.url, args.llm, args.turns)
        report(b, d, args.turns, args.max_tokens)
        return
    env = {"PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": str(args.max_tokens)}
    with live_server(Path(__file__).resolve().parent / "out", env) as srv:
        b, d = await measure(srv.ws_url, srv.llm_url, args.turns, srv.llm_key)
    report(b, d, args.turns, args.max_tokens)


if __name__ == "__main__":
    asyncio.run(main())
