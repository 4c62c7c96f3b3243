"""The embedded engine in float32 against bfloat16, in the same run: the same model (SmolLM2-135M with the shipped
persona adapter merged), the same system prompt the server renders, greedy, the same token cap. Each engine is
started on its own (never both at once: 2 cores), warmed up, then sent each message in turn; prints first token and
decode speed (tokens after the first / time after the first token) per engine, and how often the two greedy replies
agree word for word (bfloat16 rounds the weights, so some replies differ).

    .venv/bin/python bench/llm_dtype.py [--rounds 3] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stats import machine, row  # noqa: E402
from bench.text_turn_latency import MESSAGES  # noqa: E402
from harness import free_port  # noqa: E402


def stream(
    client: httpx.Client, url: str, model: str, system: str, text: str, max_tokens: int
) -> tuple[float, float, int, str]:
    """(first token ms, decode tokens/s after the first, completion tokens, text)."""
    body = {
        "model": model,
        "stream": True,
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
    }
    t0 = time.perf_counter()
    first = last = None
    parts: list[str] = []
    tokens = 0
    with client.stream("POST", f"{url}/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("usage"):
                tokens = ev["usage"]["completion_tokens"]
            for c in ev.get("choices", []):
                if c["delta"].get("content"):
                    last = time.perf_counter()
                    first = first or last
                    parts.append(c["delta"]["content"])
    assert first is not None and last is not None
    return (first - t0) * 1000, (tokens - 1) / max(last - first, 1e-6), tokens, "".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    from agent.llm.engine import EmbeddedEngine, resolve_dtype
    from persona import ControlSignals
    from prompts import load_profiles
    from prompts.render import render_system
    from server.settings import Settings

    print(machine())
    print(f"this CPU: auto -> {resolve_dtype('auto')}")
    system = render_system(load_profiles()["companion"], ControlSignals())
    base = Settings().runtime_config().embedded
    out: dict[str, dict[str, list]] = {}
    for dtype in ("float32", "bfloat16"):
        cfg = replace(base, dtype=dtype, port=free_port(), log_file=ROOT / "bench" / "out" / f"vllm-{dtype}.log")
        engine = EmbeddedEngine(cfg)
        t0 = time.perf_counter()
        engine.start_sync()
        ready_s = time.perf_counter() - t0
        res: dict[str, list] = {"first": [], "tps": [], "text": []}
        try:
            with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {cfg.api_key}"}) as client:
                for m in MESSAGES:  # warm-up: every prompt once (prefix cache, kernels)
                    stream(client, engine.base_url, cfg.model_name, system, m, args.max_tokens)
                for _ in range(args.rounds):
                    for m in MESSAGES:
                        first, tps, _n, text = stream(
                            client, engine.base_url, cfg.model_name, system, m, args.max_tokens
                        )
                        res["first"].append(first)
                        res["tps"].append(tps)
                        res["text"].append(text)
        finally:
            engine.stop_sync()
        out[dtype] = res
        print(f"{dtype}: engine ready in {ready_s:.0f} s", flush=True)
    print(
        f"embedded vLLM on CPU, {cfg.model_name} ({base.served_name} + adapter), {len(MESSAGES)} messages x "
        f"{args.rounds} rounds, greedy, max_tokens {args.max_tokens}, companion system prompt:"
    )
    for dtype, res in out.items():
        print("  " + row(f"{dtype}_first_token", res["first"], what="request -> first token"))
        print("  " + row(f"{dtype}_decode", res["tps"], unit="tok/s", what="tokens after the first / their time"))
    same = sum(a == b for a, b in zip(out["float32"]["text"], out["bfloat16"]["text"])) / len(out["float32"]["text"])
    print(f"greedy replies identical in both: {same:.0%}")
    for a, b in list(zip(out["float32"]["text"], out["bfloat16"]["text"]))[: len(MESSAGES)]:
        if a != b:
            print(f"  float32:  {a[:110]!r}\n  bfloat16: {b[:110]!r}")
    f32, bf = (sorted(out[d]["tps"])[len(out[d]["tps"]) // 2] for d in ("float32", "bfloat16"))
    print(f"llm_dtype: float32_decode={f32:.1f}tok/s bfloat16_decode={bf:.1f}tok/s speedup={bf / f32:.2f}x")


if __name__ == "__main__":
    main()
