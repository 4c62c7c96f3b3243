"""Latency breakdown of a text turn through the real server and the real LLM, against a peer in the same run:
the same LLM called directly (OpenAI-compatible streaming, no perception/persona/policy), so the difference is
what our pipeline adds.

    .venv/bin/python bench/text_turn_latency.py [--turns 24] [--url ws://host:port/v1/chat --llm http://host:port]

Without --url it starts `persona-agent serve` with the embedded vLLM (SmolLM2-135M on CPU).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import statistics
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stats import machine, row  # noqa: E402
from prompts import load_profiles, render  # noqa: E402
from harness import live_server  # noqa: E402

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


async def through_backend(ws_url: str, turns: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ("overhead_before_llm", "perception", "fusion", "policy",
                                                    "llm_first_token", "first_delta", "total", "client_first_delta",
                                                    "client_done")}
    models: set[str] = set()
    async with websockets.connect(ws_url, max_size=8 * 1024 * 1024) as ws:
        for i in range(turns):
            # A fresh session per turn: no history, so the prompt is the same size as the direct peer's.
            await ws.close()
            ws = await websockets.connect(ws_url, max_size=8 * 1024 * 1024)
            await ws.send(json.dumps({"type": "session.start", "profile": "companion"}))
            await ws.recv()
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "user.text", "text": MESSAGES[i % len(MESSAGES)]}))
            first = None
            while True:
                ev = json.loads(await ws.recv())
                if ev["type"] == "response.delta" and first is None:
                    first = time.perf_counter()
                if ev["type"] == "error":
                    raise RuntimeError(ev)
                if ev["type"] == "response.done":
                    break
            t_done = time.perf_counter()
            for k in ("overhead_before_llm", "perception", "fusion", "policy", "llm_first_token", "first_delta", "total"):
                out[k].append(ev["timings_ms"][k])
            models.add(ev["model"])
            out["client_first_delta"].append((first - t0) * 1000)
            out["client_done"].append((t_done - t0) * 1000)
    assert len(models) == 1, models
    out["model"] = sorted(models)  # type: ignore[assignment]
    return out


async def direct_llm(llm_url: str, turns: int, max_tokens: int, model: str) -> dict[str, list[float]]:
    """The same model the backend answered with (the adapter, when the embedded engine serves one)."""
    out: dict[str, list[float]] = {"first_token": [], "total": []}
    profile = load_profiles()["companion"]
    async with httpx.AsyncClient(timeout=120) as client:
        for i in range(turns):
            # The same kind of prompt the backend sends (profile + rendered controls), so prompt length matches.
            prompt = render(profile, profile.base, [], MESSAGES[i % len(MESSAGES)])
            body = {"model": model, "stream": True, "temperature": 0, "max_completion_tokens": max_tokens,
                    "messages": [{"role": m.role, "content": m.content} for m in prompt.messages]}
            t0 = time.perf_counter()
            first = None
            async with client.stream("POST", f"{llm_url}/v1/chat/completions", json=body) as r:
                async for line in r.aiter_lines():
                    if first is None and line.startswith("data: ") and '"content"' in line:
                        first = time.perf_counter()
            out["first_token"].append((first - t0) * 1000)
            out["total"].append((time.perf_counter() - t0) * 1000)
    return out


def report(b: dict[str, list[float]], d: dict[str, list[float]], turns: int, max_tokens: int) -> None:
    print(f"text-turn latency — {turns} turns, replies capped at {max_tokens} tokens, greedy decoding")
    print(machine())
    print("through persona-agent (server-side timings from response.done):")
    for k, what in [("overhead_before_llm", "perception+fusion+persona+policy+render, before the LLM request"),
                    ("perception", "text perception"), ("fusion", "fusion"), ("policy", "persona+policy+render"),
                    ("llm_first_token", "LLM request sent -> first token"),
                    ("first_delta", "LLM request sent -> first text past the output guard"),
                    ("total", "message received -> reply done")]:
        print("  " + row(k, b[k], what=what))
    print("  client view (send -> event over WebSocket):")
    print("  " + row("client_first_delta", b["client_first_delta"], what="send -> first response.delta"))
    print("  " + row("client_done", b["client_done"], what="send -> response.done"))
    print("peer: the same LLM called directly with a same-size prompt (raw OpenAI-compatible streaming, no pipeline, no LangChain):")
    print("  " + row("direct_first_token", d["first_token"], what="request -> first content chunk"))
    print("  " + row("direct_total", d["total"], what="request -> stream end"))
    guard = [a - b for a, b in zip(b["first_delta"], b["llm_first_token"])]
    print("  " + row("guard_delay", guard, what="model's first token -> first text released by the output guard"))
    med = statistics.median
    print(f"model: {b['model'][0]}")
    print(f"first_delta_ms={med(b['client_first_delta']):.1f} direct_first_token_ms={med(d['first_token']):.1f} "
          f"overhead_ms={med(b['overhead_before_llm']):.1f}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--url", help="ws URL of a running server (default: start one)")
    ap.add_argument("--llm", help="root URL of the LLM the running server uses (for the direct peer)")
    args = ap.parse_args()
    if args.url:
        assert args.llm, "--llm is needed with --url"
        b = await through_backend(args.url, args.turns)
        d = await direct_llm(args.llm, args.turns, args.max_tokens, b["model"][0])
        report(b, d, args.turns, args.max_tokens)
        return
    env = {"PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": str(args.max_tokens)}
    with live_server(Path(__file__).resolve().parent / "out", env) as srv:
        b = await through_backend(srv.ws_url, args.turns)
        d = await direct_llm(srv.llm_url, args.turns, args.max_tokens, b["model"][0])
    report(b, d, args.turns, args.max_tokens)


if __name__ == "__main__":
    asyncio.run(main())
