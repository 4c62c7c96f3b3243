"""Do the control signals visibly shape the replies? For each of N situations from ESConv valid, the seeker's opening
words are sent through the real server twice per signal — the signal overridden low (0.1) and high (0.9), everything
else as the policy decides — and the replies are measured:

  verbosity → reply length in words;   formality → formality score of the reply (persona.style.read_style);
  empathy   → the reply's warmth as our text model reads it (P(caring) + P(joy)-group mass - P(anger/disgust) mass).

Per signal it prints the mean of each measure at low and high, the paired difference and Cohen's d_z (mean paired
difference / its SD), with a sign test. Runs against whatever LLM the server uses: the embedded SmolLM2-135M by
default (a weak model: expect small effects), or a GPU vLLM with LLM_BASE_URL / LLM_MODEL set.

    .venv/bin/python bench/controllability.py [--n 50] [--max-tokens 160] [--concurrency 8]

Sessions run `--concurrency` at a time (vLLM batches them, which cuts the wall time several-fold on a CPU); batching
can change floating-point rounding, so a greedy reply may differ by a token from a one-at-a-time run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.stats import machine  # noqa: E402
from harness import live_server  # noqa: E402
from tuning.eval_replies import situations as eval_situations  # noqa: E402
from tuning.eval_replies import warmth  # noqa: E402

SIGNALS = ("verbosity", "formality", "empathy")


def situations(n: int) -> list[str]:
    """The seeker's first substantive message (or the situation text) of the first n valid dialogues."""
    return eval_situations(ROOT.parent / "shared" / "data" / "esconv" / "valid.jsonl", n)


async def reply(url: str, text: str, signal: str, value: float) -> str:
    import websockets

    async with websockets.connect(url, max_size=8 * 1024 * 1024) as ws:
        await ws.send(json.dumps({"type": "session.start", "profile": "companion"}))
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "controls.override", "controls": {signal: value}}))
        ev = json.loads(await ws.recv())
        assert ev["type"] == "controls.updated" and signal in ev["overrides"], ev
        await ws.send(json.dumps({"type": "user.text", "text": text}))
        while True:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 300))
            if ev["type"] == "response.done":
                return ev["text"]
            if ev["type"] == "error":
                raise RuntimeError(ev)


async def all_replies(url: str, texts: list[str], signal: str, value: float, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> str:
        async with gate:
            return await reply(url, text, signal, value)

    return list(await asyncio.gather(*(one(t) for t in texts)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    from perception.text_model import load_text_model
    from persona import read_style

    texts = situations(args.n)
    env = {
        "PERSONA_LLM_TEMPERATURE": "0",
        "PERSONA_LLM_MAX_TOKENS": str(args.max_tokens),
        "PERSONA_STORE": "memory",
        "PERSONA_VOICE_ENABLED": "false",
        "PERSONA_FACE_ENABLED": "false",
    }
    print(machine())
    with live_server(ROOT / "bench" / "out" / "controllability", env) as srv:
        model_name = os.environ.get("LLM_MODEL") or "embedded SmolLM2-135M-Instruct (vLLM CPU)"
        print(
            f"LLM: {model_name}; greedy; replies capped at {args.max_tokens} tokens; {len(texts)} ESConv valid situations\n"
        )
        replies: dict[tuple[str, float], list[str]] = {}
        for sig in SIGNALS:
            for val in (0.1, 0.9):
                replies[(sig, val)] = asyncio.run(all_replies(srv.ws_url, texts, sig, val, args.concurrency))
                print(f"  {sig}={val}: {len(replies[(sig, val)])} replies", flush=True)
    text_model = load_text_model(None, threads=2)
    measures = {
        "verbosity": ("words", lambda rs: np.array([len(r.split()) for r in rs], float)),
        "formality": ("formality score", lambda rs: np.array([read_style(r).formality for r in rs], float)),
        "empathy": ("warmth (text model)", lambda rs: warmth(text_model, rs)),
    }
    print("\n| signal | measure | mean at 0.1 | mean at 0.9 | paired diff | Cohen's d_z | high > low in |")
    print("|---|---|---|---|---|---|---|")
    for sig in SIGNALS:
        name, f = measures[sig]
        lo, hi = f(replies[(sig, 0.1)]), f(replies[(sig, 0.9)])
        d = hi - lo
        dz = float(d.mean() / d.std(ddof=1)) if d.std(ddof=1) > 0 else float("nan")
        print(
            f"| {sig} | {name} | {lo.mean():.3f} | {hi.mean():.3f} | {d.mean():+.3f} | {dz:+.2f} | "
            f"{int((d > 0).sum())}/{len(d)} ({int((d == 0).sum())} ties) |"
        )
    ex = texts[0]
    print(f"\nexample situation: {ex!r}")
    for sig in SIGNALS:
        for val in (0.1, 0.9):
            print(f"  {sig}={val}: {replies[(sig, val)][0][:300]!r}")


if __name__ == "__main__":
    main()
