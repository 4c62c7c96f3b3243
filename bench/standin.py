"""ScriptedOpenAIStandIn: a scripted OpenAI-compatible chat server for load benchmarks ONLY. It streams a fixed reply
at a fixed pace, so a benchmark measures our own overhead rather than a model's. Never used by tests or serving.

    python bench/standin.py --port 8200 --tokens 24 --token-ms 10 --first-token-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

WORDS = (
    "That sounds like a lot to carry. I'm here with you; tell me more about what happened and how it "
    "felt, and we can look at it together."
).split()
CONTENT = [json.dumps(w + " ") for w in WORDS]  # each token's content as a JSON string


def make_app(tokens: int, token_ms: float, first_token_ms: float):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def models(request):
        return JSONResponse({"object": "list", "data": [{"id": "scripted-standin", "object": "model"}]})

    async def chat(request):
        body = await request.json()
        n = min(tokens, int(body.get("max_completion_tokens") or body.get("max_tokens") or tokens))

        async def stream():
            # Each event is the same bytes vLLM would send, pre-encoded per request (the stand-in shares the cores
            # with the server it measures, so it spends as little CPU per event as it can).
            cid, created = f"chatcmpl-{time.monotonic_ns()}", int(time.time())
            head = (
                f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{created},"model":"scripted-standin",'
            )
            await asyncio.sleep(first_token_ms / 1000)
            for i in range(n):
                yield (
                    head
                    + '"choices":[{"index":0,"delta":{"content":'
                    + CONTENT[i % len(CONTENT)]
                    + '},"finish_reason":null}]}\n\n'
                )
                await asyncio.sleep(token_ms / 1000)
            end = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": "scripted-standin",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length" if n == tokens else "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": n, "total_tokens": 100 + n},
            }
            yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--token-ms", type=float, default=10.0)
    ap.add_argument("--first-token-ms", type=float, default=50.0)
    args = ap.parse_args()
    import uvicorn

    print(f"ScriptedOpenAIStandIn (benchmark only) on :{args.port}", flush=True)
    uvicorn.run(
        make_app(args.tokens, args.token_ms, args.first_token_ms), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
