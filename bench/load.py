"""Load: N concurrent WebSocket sessions, each sending several text turns, against our real server whose LLM is the
ScriptedOpenAIStandIn (bench/standin.py: fixed reply, fixed pace) so that what is measured is our own overhead.

Per turn it records the server's own `overhead_before_llm` (perception + fusion + policy + rendering, from
response.done) and, from the client, message-sent → first delta minus the stand-in's scripted first-token delay.
Also errors, server RSS before/after, open asyncio tasks before/after (from /metrics).

    .venv/bin/python bench/load.py --sessions 50 100 200 500 --turns 3
    .venv/bin/python bench/load.py --soak 600 --sessions 50        (a soak: RSS sampled every 30 s)
    .venv/bin/python bench/load.py --matrix --sessions 100          (1, 2, 4 workers x SQLite, Redis)
    .venv/bin/python bench/load.py --rate 25 50 100 150 --sessions 500 --duration 30   (open loop)

Open loop (--rate): N sessions stay connected; turns arrive as a Poisson process at R per second, each sent on a
session that has no turn in flight (as many users, each waiting for their reply), whatever the server's pace — so
queueing shows up as overhead rather than as a slower client. It prints achieved throughput, overhead before the LLM
p50/p95/p99 (server-side, from response.done), errors and RSS per rate, a PNG of overhead p95 against offered rate
(bench/out/load/saturation.png, with the `bench` extra's matplotlib), and a last line
`load: offered=<R>/s achieved=<X>/s overhead_p50=<ms> p95=<ms> p99=<ms> errors=<n>` for the highest rate run.
The client runs on the same cores as the server, which makes the figures pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.stats import machine, summarize  # noqa: E402
from harness import free_port, live_server  # noqa: E402

FIRST_TOKEN_MS = 50.0
MESSAGES = [
    "I had a rough day at work.",
    "My manager criticised me in front of everyone.",
    "I just want to feel appreciated, you know?",
    "Thanks, that helps a bit.",
]


async def session(url: str, turns: int, out: list, errors: list) -> None:
    import websockets

    try:
        async with websockets.connect(url, max_size=8 * 1024 * 1024, open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "session.start"}))
            json.loads(await ws.recv())
            for i in range(turns):
                t0 = time.perf_counter()
                await ws.send(json.dumps({"type": "user.text", "text": MESSAGES[i % len(MESSAGES)]}))
                first = None
                while True:
                    ev = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    if ev["type"] == "response.delta" and first is None:
                        first = (time.perf_counter() - t0) * 1000
                    elif ev["type"] == "response.done":
                        out.append(
                            (
                                ev["timings_ms"]["overhead_before_llm"],
                                (first or np.nan) - FIRST_TOKEN_MS,
                                (time.perf_counter() - t0) * 1000,
                            )
                        )
                        break
                    elif ev["type"] == "error":
                        errors.append(ev["code"])
                        break
    except Exception as exc:  # noqa: BLE001 - counted, reported
        errors.append(type(exc).__name__)


def tasks(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("persona_asyncio_tasks "))


async def wave(srv, n: int, turns: int) -> tuple[list, list, float]:
    out, errors = [], []
    t0 = time.perf_counter()
    await asyncio.gather(*(session(srv.ws_url, turns, out, errors) for _ in range(n)))
    return out, errors, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, nargs="+", default=[50, 100, 200, 500])
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--soak", type=float, default=0.0, help="seconds of continuous load instead of waves")
    ap.add_argument("--matrix", action="store_true", help="throughput for 1, 2, 4 workers with SQLite and with Redis")
    ap.add_argument("--rate", type=float, nargs="+", help="open loop: turns per second offered (Poisson arrivals)")
    ap.add_argument("--duration", type=float, default=30.0, help="open loop: seconds per offered rate")
    ap.add_argument(
        "--workers", type=int, default=1, help="open loop: server worker processes (more than one: Redis store)"
    )
    ap.add_argument(
        "--peer-env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="open loop: run the same rates again on a server with these settings (a peer in the same run, "
        "e.g. PERSONA_GC_FREEZE=false PERSONA_GC_THRESHOLDS='[700,10,10]' for Python's collector)",
    )
    args = ap.parse_args()
    if args.matrix:
        return matrix(args)
    if args.rate:
        return open_loop(args)
    port = free_port()
    standin = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "standin.py"),
            "--port",
            str(port),
            "--first-token-ms",
            str(FIRST_TOKEN_MS),
            "--token-ms",
            "10",
            "--tokens",
            "24",
        ]
    )
    # waves: the memory store (nothing but our overhead); soak: SQLite, so finished sessions leave the process's memory
    store = (
        {"PERSONA_STORE": "sqlite", "PERSONA_STORE_PATH": str(ROOT / "bench" / "out" / "soak.sqlite3")}
        if args.soak
        else {"PERSONA_STORE": "memory"}
    )
    env = {
        "LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "LLM_MODEL": "scripted-standin",
        **store,
        "PERSONA_VOICE_ENABLED": "false",
        "PERSONA_FACE_ENABLED": "false",
    }
    print(machine())
    print("LLM: ScriptedOpenAIStandIn (benchmark only): 24 tokens, first after 50 ms, then one per 10 ms\n")
    try:
        with live_server(ROOT / "bench" / "out" / "load", env) as srv:
            asyncio.run(wave(srv, 4, 1))  # warm-up
            rss0, tasks0 = srv.rss_mb(), tasks(srv.url)
            if args.soak:
                soak(srv, args, rss0)
                return
            print(
                "| sessions | turns | errors | overhead before LLM p50 / p95 (server) "
                "| added to first token p50 / p95 (client) | turn total p50 / p95 | wall | RSS after | tasks after |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for n in args.sessions:
                out, errors, wall = asyncio.run(wave(srv, n, args.turns))
                ob = summarize([o[0] for o in out])
                ft = summarize([o[1] for o in out])
                tot = summarize([o[2] for o in out])
                time.sleep(1.0)
                print(
                    f"| {n} | {len(out)} | {len(errors)} {sorted(set(errors)) if errors else ''} | {ob[0]:.1f} / {ob[1]:.1f} ms | "
                    f"{ft[0]:.1f} / {ft[1]:.1f} ms | {tot[0]:.0f} / {tot[1]:.0f} ms | {wall:.1f} s | "
                    f"{srv.rss_mb():.0f} MB | {tasks(srv.url):.0f} |",
                    flush=True,
                )
            print(
                f"\nRSS before the waves {rss0:.0f} MB; asyncio tasks before {tasks0:.0f} (back to this after each wave = no orphans)"
            )
    finally:
        standin.terminate()
        standin.wait()


def matrix(args) -> None:
    """The same load (first --sessions value x --turns) on 1, 2, 4 worker processes, sessions in SQLite or Redis."""
    from tests.redisserver import RedisServer

    port = free_port()
    standin = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "standin.py"),
            "--port",
            str(port),
            "--first-token-ms",
            str(FIRST_TOKEN_MS),
            "--token-ms",
            "10",
            "--tokens",
            "24",
        ]
    )
    n = args.sessions[0]
    print(machine())
    print(
        f"LLM: ScriptedOpenAIStandIn (benchmark only). {n} concurrent sessions x {args.turns} turns per run; "
        f"this machine has {os.cpu_count()} cores, so more than 2 workers can only add contention\n"
    )
    print("| workers | store | turns/s | overhead before LLM p50 / p95 | added to first token p50 / p95 | errors |")
    print("|---|---|---|---|---|---|")
    out_dir = ROOT / "bench" / "out" / "matrix"
    try:
        with RedisServer(out_dir / "redis") as redis:
            for workers in (1, 2, 4):
                for store in ("sqlite", "redis"):
                    env = {
                        "LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
                        "LLM_MODEL": "scripted-standin",
                        "PERSONA_STORE": store,
                        "PERSONA_REDIS_URL": redis.url,
                        "PERSONA_STORE_PATH": str(out_dir / f"s{workers}.sqlite3"),
                        "PERSONA_VOICE_ENABLED": "false",
                        "PERSONA_FACE_ENABLED": "false",
                    }
                    with live_server(out_dir / f"{workers}-{store}", env, args=["--workers", str(workers)]) as srv:
                        asyncio.run(wave(srv, 2 * workers, 1))  # warm-up every worker
                        out, errors, wall = asyncio.run(wave(srv, n, args.turns))
                    ob, ft = summarize([o[0] for o in out]), summarize([o[1] for o in out])
                    print(
                        f"| {workers} | {store} | {len(out) / wall:.1f} | {ob[0]:.1f} / {ob[1]:.1f} ms | "
                        f"{ft[0]:.1f} / {ft[1]:.1f} ms | {len(errors)} |",
                        flush=True,
                    )
    finally:
        standin.terminate()
        standin.wait()


DELTA = '{"type":"response.delta"'  # how a delta event begins on the wire (the client need not parse it)


def run_fast(main):
    """The load client on uvloop when it is installed (the server runs on it too): the client shares the cores with
    the server, so the less CPU it spends per event the more the figures are the server's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class Live:
    """One connected session of the open-loop run: at most one turn in flight, like one user waiting for a reply."""

    def __init__(self, ws) -> None:
        self.ws, self.busy, self.t0, self.first = ws, False, 0.0, None

    async def send(self, text: str) -> None:
        self.busy, self.t0, self.first = True, time.perf_counter(), None
        await self.ws.send(json.dumps({"type": "user.text", "text": text}))

    async def read(self, out: list, errors: list) -> None:
        async for raw in self.ws:
            if isinstance(raw, str) and raw.startswith(DELTA):  # most events: only the first one's time matters
                if self.first is None:
                    self.first = (time.perf_counter() - self.t0) * 1000
                continue
            ev = json.loads(raw)
            if ev["type"] == "response.delta" and self.first is None:
                self.first = (time.perf_counter() - self.t0) * 1000
            elif ev["type"] == "response.done":
                out.append(
                    (
                        ev["timings_ms"]["overhead_before_llm"],
                        (self.first or np.nan) - FIRST_TOKEN_MS,
                        (time.perf_counter() - self.t0) * 1000,
                        time.perf_counter(),
                        ev["timings_ms"]["perception"],
                    )
                )
                self.busy = False
            elif ev["type"] == "error":
                errors.append(ev["code"])
                self.busy = False


async def offered(
    sessions: list[Live], rate: float, duration: float, rng: np.random.Generator
) -> tuple[list, list, int, float]:
    """Poisson arrivals at `rate` for `duration` s; waits for the turns in flight. (done, errors, unsent, achieved/s).

    The arrivals are a Poisson process given its count: round(rate * duration) arrival times drawn uniformly over the
    run and sorted, so the offered load is the same in every run rather than ±1.5% at 150/s for 30 s. Achieved is the
    turns completed from 1 s after the start to the end of the window, per second: a turn cannot complete before the
    stand-in's own reply time (~0.3 s) after it is sent, so counting from the start would read a server that keeps up
    as a few per cent short of the offered rate."""
    out: list = []
    errors: list = []
    readers = [asyncio.create_task(s.read(out, errors)) for s in sessions]
    unsent, t0 = 0, time.perf_counter()
    try:
        for at in np.sort(rng.uniform(0.0, duration, int(round(rate * duration)))):
            await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
            idle = [s for s in sessions if not s.busy]
            if not idle:
                unsent += 1  # every user is waiting for a reply: the arrival is lost (counted, reported)
                continue
            await idle[int(rng.integers(len(idle)))].send(MESSAGES[int(rng.integers(len(MESSAGES)))])
        deadline = time.perf_counter() + 60
        while any(s.busy for s in sessions) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    done_in_window = [o for o in out if 1.0 < o[3] - t0 <= duration]
    return out, errors, unsent, len(done_in_window) / (duration - 1.0)


Row = tuple[float, float, tuple[float, float, float], int]  # offered/s, achieved/s, overhead p50/p95/p99, errors


def last_line(label: str, row: Row) -> str:
    rate, achieved, q, errs = row
    return (
        f"{label}: offered={rate:g}/s achieved={achieved:.1f}/s overhead_p50={q[0]:.1f} p95={q[1]:.1f} "
        f"p99={q[2]:.1f} errors={errs}"
    )


def open_loop(args) -> None:
    port = free_port()
    standin = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "standin.py"),
            "--port",
            str(port),
            "--first-token-ms",
            str(FIRST_TOKEN_MS),
            "--token-ms",
            "10",
            "--tokens",
            "24",
        ]
    )
    redis = None
    if args.workers == 1:
        store = {"PERSONA_STORE": "memory"}
    else:  # several workers share sessions through Redis (SQLite's single writer lock fails them under load)
        from tests.redisserver import RedisServer

        redis = RedisServer(ROOT / "bench" / "out" / "load" / "redis", appendonly=False).start()
        store = {"PERSONA_STORE": "redis", "PERSONA_REDIS_URL": redis.url}
    env = {
        "LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "LLM_MODEL": "scripted-standin",
        **store,
        "PERSONA_VOICE_ENABLED": "false",
        "PERSONA_FACE_ENABLED": "false",
        "PERSONA_TTS_ENABLED": "false",
    }
    n = args.sessions[0]
    print(machine())
    print(
        f"LLM: ScriptedOpenAIStandIn (benchmark only): 24 tokens, first after 50 ms, then one per 10 ms. Open loop: "
        f"{n} connected sessions, Poisson arrivals, {args.duration:.0f} s per rate; {args.workers} server worker(s), "
        f"{store['PERSONA_STORE']} store; client on the same cores\n"
    )
    peer = dict(kv.split("=", 1) for kv in args.peer_env)
    arms = {"ours": {}, **({"peer (" + " ".join(args.peer_env) + ")": peer} if peer else {})}
    results: dict[str, list[Row]] = {}
    try:
        for label, extra in arms.items():
            print(f"**{label}**\n")
            results[label] = open_loop_arm(args, {**env, **extra})
            print()
    finally:
        standin.terminate()
        standin.wait()
        if redis is not None:
            redis.stop()
    rows = results["ours"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for label, arm in results.items():
            ax.plot([r[0] for r in arm], [r[2][1] for r in arm], marker="o", label=f"{label}: overhead before LLM, p95")
            ax.plot([r[0] for r in arm], [r[2][0] for r in arm], marker=".", label=f"{label}: p50")
        ax.set_xlabel("offered turns/s (Poisson)")
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.set_title(f"saturation: {n} sessions, scripted stand-in LLM, {machine().split(',')[0]}")
        ax.legend()
        path = ROOT / "bench" / "out" / "load" / "saturation.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"\nplot: {path}")
    except ImportError:
        print("\n(no plot: install the bench extra for matplotlib)")
    for label, arm in results.items():
        if label != "ours":
            print(last_line(label, arm[-1]))
    print(last_line("load", rows[-1]))


def open_loop_arm(args, env: dict[str, str]) -> list[Row]:
    """One server (with `env`), the offered rates in turn: a table row per rate."""
    import websockets

    n = args.sessions[0]
    rows: list[Row] = []

    async def run(srv) -> None:
        conns = []
        for _ in range(n):
            ws = await websockets.connect(srv.ws_url, max_size=8 * 1024 * 1024, open_timeout=60)
            await ws.send(json.dumps({"type": "session.start"}))
            json.loads(await ws.recv())
            conns.append(Live(ws))
        rng = np.random.default_rng(7)
        await offered(conns[:4], 4.0, 2.0, rng)  # warm-up
        print(
            "| offered turns/s | achieved turns/s | overhead before LLM p50 / p95 / p99 | of it perception p50 / p95 "
            "| added to first token p50 / p95 | unsent (all busy) | errors | RSS |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for rate in args.rate:
            out, errors, unsent, achieved = await offered(conns, rate, args.duration, rng)
            ob = np.array([o[0] for o in out]) if out else np.array([np.nan])
            q = (float(np.percentile(ob, 50)), float(np.percentile(ob, 95)), float(np.percentile(ob, 99)))
            ft = summarize([o[1] for o in out])
            rows.append((rate, achieved, q, len(errors)))
            pc = summarize([o[4] for o in out])
            print(
                f"| {rate:g} | {achieved:.1f} | {q[0]:.1f} / {q[1]:.1f} / {q[2]:.1f} ms | {pc[0]:.1f} / {pc[1]:.1f} ms | "
                f"{ft[0]:.1f} / {ft[1]:.1f} ms | "
                f"{unsent} | {len(errors)} {sorted(set(errors)) if errors else ''} | {srv.rss_mb():.0f} MB |",
                flush=True,
            )
        for c in conns:
            await c.ws.close()

    with live_server(ROOT / "bench" / "out" / "load", env, args=["--workers", str(args.workers)]) as srv:
        run_fast(run(srv))
    return rows


def soak(srv, args, rss0: float) -> None:
    end = time.monotonic() + args.soak
    samples, turns, errs = [(0.0, rss0)], 0, 0
    t0 = time.monotonic()
    while time.monotonic() < end:
        out, errors, _ = asyncio.run(wave(srv, args.sessions[0], args.turns))
        turns += len(out)
        errs += len(errors)
        if time.monotonic() - t0 - samples[-1][0] >= 30:
            samples.append((time.monotonic() - t0, srv.rss_mb()))
            print(f"  t={samples[-1][0]:5.0f} s  RSS {samples[-1][1]:.0f} MB  turns {turns}  errors {errs}", flush=True)
    rss = np.array([s[1] for s in samples])
    half = len(rss) // 2
    print(
        f"\nsoak {args.soak:.0f} s, {args.sessions[0]} sessions per wave x {args.turns} turns: {turns} turns, {errs} errors; "
        f"RSS start {rss[0]:.0f} MB, first-half mean {rss[:half].mean():.0f} MB, second-half mean {rss[half:].mean():.0f} MB, "
        f"end {rss[-1]:.0f} MB; tasks at end {tasks(srv.url):.0f}"
    )


if __name__ == "__main__":
    main()
