"""How good are the replies a user gets, with the control-following adapter and without it, in one run?

    persona-agent eval replies --dialogues ../shared/data/esconv/valid.jsonl [--n 200] [--situations 50]

Two embedded vLLM engines, one after the other (the adapter merged into the weights, as the server runs it; the
plain base model), each behind a real server, everything else identical (greedy, the same token cap). For each:

- reply quality: N supporter turns of the dialogues; the dialogue up to that turn is seeded into the server's own
  session store, the session is resumed over the WebSocket and the seeker's message sent (the real server path:
  perception, persona, policy, prompt, guard). The reply is scored against the gold supporter turn: ROUGE-L F1,
  chrF, distinct-2, mean words, share ending on a complete sentence; and, since chrF's default beta=2 rewards length,
  chrF at beta=1 and the base's replies cut to the adapter's lengths (`chrf_by_length`);
- controllability: for S situations, each of verbosity / formality / empathy overridden to 0.1 and 0.9 at the same
  max_tokens: the paired Cohen's d_z of words, formality score (persona.style) and warmth (our text model);
- strategy adherence: each of the 8 ESConv strategies forced in turn on --strategy-situations situations; a TF-IDF logistic
  regression trained on ESConv train supporter turns reads the strategy back from the reply.

It also measures the engine's first token and decode rate, adapter vs base, on the same prompts.
The last two lines: `adapter: rougeL=… chrf=… dz_verbosity=… dz_formality=… dz_empathy=… strategy=… complete=…`
and the same for `base:`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from persona import PersonaState, read_style
from persona.controls import STRATEGIES
from tuning.adapter import Turn, read_turns

SIGNALS = ("verbosity", "formality", "empathy")
_COMPLETE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*\s*$")


def complete(text: str) -> bool:
    return bool(_COMPLETE.search(text.strip()))


def distinct2(texts: Sequence[str]) -> float:
    grams = [tuple(t.split()[i : i + 2]) for t in texts for i in range(max(0, len(t.split()) - 1))]
    return len(set(grams)) / max(1, len(grams))


def warmth(model, texts: Sequence[str]) -> np.ndarray:
    from perception.text_model import GOEMOTIONS

    probs = model.predict(list(texts))
    pos = [GOEMOTIONS.index(g) for g in ("caring", "approval", "gratitude", "optimism", "love")]
    neg = [GOEMOTIONS.index(g) for g in ("anger", "annoyance", "disapproval", "disgust")]
    return probs[:, pos].sum(1) - probs[:, neg].sum(1)


def d_z(lo: np.ndarray, hi: np.ndarray) -> float:
    d = hi - lo
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else float("nan")


def chrf_by_length(refs: Sequence[str], adapter: Sequence[str], base: Sequence[str]) -> dict[str, float]:
    """chrF's default beta=2 weighs character n-gram recall twice as much as precision, so a longer reply scores higher
    for its length alone. Beside the default: chrF at beta=1 for both arms, and the base's replies cut to the adapter's
    reply lengths in words (same turns), which leaves content and removes length."""
    from sacrebleu.metrics import CHRF

    cut = [" ".join(b.split()[: len(a.split())]) for a, b in zip(adapter, base)]
    beta1 = CHRF(beta=1)
    return {
        "adapter_beta1": beta1.corpus_score(list(adapter), [list(refs)]).score,
        "base_beta1": beta1.corpus_score(list(base), [list(refs)]).score,
        "base_cut_to_adapter_length": CHRF().corpus_score(cut, [list(refs)]).score,
    }


def strategy_classifier(train_path: Path):
    """TF-IDF (words 1-2, char 2-4) + logistic regression over the ESConv train supporter turns."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    turns = [t for _, t in read_turns(train_path)]
    clf = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3, sublinear_tf=True),
        ),
        LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"),
    )
    clf.fit([t.reply for t in turns], [t.strategy for t in turns])
    return clf


def pick_turns(path: Path, n: int, seed: int) -> list[Turn]:
    turns = [t for _, t in read_turns(path)]
    return random.Random(seed).sample(turns, min(n, len(turns)))


def situations(path: Path, n: int) -> list[str]:
    out = []
    with open(path) as fh:
        lines = list(fh)
    for line in lines:
        d = json.loads(line)
        first = next((t["text"] for t in d["dialog"] if t["speaker"] == "usr" and len(t["text"].split()) >= 6), None)
        out.append(first or d["situation"])
        if len(out) == n:
            break
    return out


def seed_sessions(store_path: Path, turns: Sequence[Turn], profile: str) -> list[str]:
    """Write each turn's dialogue-so-far into the server's SQLite store as a session to resume."""
    from agent.sessions import SessionRecord, SqliteStore

    store = SqliteStore(store_path)
    ids = []
    now = time.time()
    for t in turns:
        rec = SessionRecord(
            id=uuid.uuid4().hex,
            profile_id=profile,
            user_id=None,
            persona=PersonaState.initial(now),
            history=list(t.history),
        )
        store._save(rec)
        ids.append(rec.id)
    store._db.close()
    return ids


async def _turn(url: str, start: dict, text: str, overrides: dict | None = None) -> dict:
    import websockets

    async with websockets.connect(url, max_size=8 * 1024 * 1024) as ws:
        await ws.send(json.dumps({"type": "session.start", **start}))
        ev = json.loads(await ws.recv())
        assert ev["type"] == "session.started", ev
        if overrides:
            await ws.send(json.dumps({"type": "controls.override", "controls": overrides}))
            ev = json.loads(await ws.recv())
            assert ev["type"] == "controls.updated", ev
        await ws.send(json.dumps({"type": "user.text", "text": text}))
        while True:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 600))
            if ev["type"] == "response.done":
                return ev
            if ev["type"] == "error":
                raise RuntimeError(ev)


async def _many(url: str, jobs: Sequence[tuple[dict, str, dict | None]], concurrency: int) -> list[dict]:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: tuple[dict, str, dict | None]) -> dict:
        async with gate:
            return await _turn(url, *job)

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def _engine_speed(
    base_url: str, model: str, prompts: Sequence[str], max_tokens: int, api_key: str
) -> tuple[list[float], list[float]]:
    """First-token latency (ms) and decode rate (tokens/s) of single streamed requests, one at a time."""
    import httpx

    first, rate = [], []
    async with httpx.AsyncClient(timeout=300, headers={"Authorization": f"Bearer {api_key}"}) as client:
        for p in prompts:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": p}],
                "max_tokens": max_tokens,
                "temperature": 0,
                "stream": True,
                "min_tokens": max_tokens // 2,
            }
            t0 = time.perf_counter()
            t1, n = None, 0
            async with client.stream("POST", f"{base_url}/chat/completions", json=body) as r:
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if delta:
                        n += 1
                        t1 = t1 or time.perf_counter()
            t2 = time.perf_counter()
            if t1 is None:  # no token at all
                first.append(float("nan"))
                rate.append(float("nan"))
                continue
            first.append((t1 - t0) * 1000)
            rate.append((n - 1) / (t2 - t1) if n > 1 else float("nan"))
    return first, rate


def preflight(args: argparse.Namespace) -> str | None:
    """Every input and optional dependency checked before any work (the replies take many minutes): what is wrong,
    with what to install or pass, or None."""
    import importlib.util

    missing = [pip for mod, pip in NEEDS if importlib.util.find_spec(mod) is None]
    if missing:
        return f"eval replies needs {', '.join(missing)} (the bench extra): .venv/bin/pip install -e '.[bench]'"
    for flag, path in (("--dialogues", args.dialogues), ("--strategy-train", args.strategy_train)):
        p = Path(path)
        if not p.is_file():
            return f"{flag} {p}: no such file (an ESConv-format JSONL)"
        try:
            with open(p, encoding="utf-8") as fh:
                first = json.loads(fh.readline())
            ok = isinstance(first, dict) and isinstance(first.get("dialog"), list)
        except (ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            return f"{flag} {p}: not ESConv-format JSONL (one dialogue per line, with a `dialog` list)"
    return None


NEEDS = (("rouge_score", "rouge-score"), ("sacrebleu", "sacrebleu"), ("sklearn", "scikit-learn"))


def run(args: argparse.Namespace) -> int:
    if (problem := preflight(args)) is not None:
        print(f"error: {problem}")
        return 2
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    from agent.llm import (
        EmbeddedEngine,
        EmbeddedEngineConfig,
        adapter_controls_at,
        default_adapter_dir,
        default_llm_python,
        embedded_model_dir,
        lora_rank,
    )
    from harness import free_port, live_server
    from perception.text_model import default_text_model_dir, load_text_model

    dialogues = Path(args.dialogues)
    adapter = Path(args.adapter) if args.adapter else default_adapter_dir()
    assert adapter is not None and (adapter / "adapter_config.json").exists(), f"no adapter at {adapter}"
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    gold = pick_turns(dialogues, args.n, args.seed)
    texts = situations(dialogues, args.situations)
    strat_texts = texts[: max(1, args.strategy_situations)]
    # Both arms render the prompt the way the adapter was trained to read it (its training.json), so that the only
    # difference between them is the adapter.
    layout = adapter_controls_at(adapter)
    print(
        f"{len(gold)} supporter turns and {len(texts)} situations from {dialogues.name}; adapter {adapter}; "
        f"controls at: {layout}",
        flush=True,
    )

    results: dict[str, dict] = {}
    speed_prompts = [t.user for t in gold[: args.speed_n]]
    for name in ("adapter", "base"):
        # One engine at a time, each alone on the machine: the merged adapter (as the server runs it), then the
        # plain base model. With --adapter-mode lora one LoRA-enabled engine would serve both; on CPU it doubles
        # the decode time (llmenv/merge_lora.py).
        cfg = EmbeddedEngineConfig(
            python=default_llm_python(),
            model_dir=embedded_model_dir(Path(args.cache_dir)),
            port=free_port(),
            log_file=work / f"vllm-{name}.log",
            adapter_dir=adapter if name == "adapter" else None,
            max_lora_rank=lora_rank(adapter),
            adapter_mode=args.adapter_mode,
        )
        engine = EmbeddedEngine(cfg)
        asyncio.run(engine.start())
        try:
            model = cfg.model_name
            asyncio.run(_engine_speed(engine.base_url, model, speed_prompts[:2], 8, cfg.api_key))  # warm-up
            first, rate = asyncio.run(_engine_speed(engine.base_url, model, speed_prompts, 48, cfg.api_key))
            r = results[name] = {"first_token_ms": first, "tokens_per_s": rate}
            store = work / f"sessions-{name}.sqlite3"
            store.unlink(missing_ok=True)
            ids = seed_sessions(store, gold, args.profile)
            env = {
                "LLM_BASE_URL": engine.base_url,
                "LLM_MODEL": model,
                "LLM_API_KEY": cfg.api_key,
                "PERSONA_LLM_TEMPERATURE": "0",
                "PERSONA_LLM_MAX_TOKENS": str(args.max_tokens),
                "PERSONA_LLM_TIMEOUT_S": "1800",
                "PERSONA_STORE": "sqlite",
                "PERSONA_STORE_PATH": str(store),
                "PERSONA_VOICE_ENABLED": "false",
                "PERSONA_FACE_ENABLED": "false",
                "PERSONA_CACHE_DIR": args.cache_dir,
                "PERSONA_CONTROLS_AT": layout,
            }
            with live_server(work / name, env) as srv:
                t0 = time.time()
                done = asyncio.run(
                    _many(srv.ws_url, [({"resume": i}, t.user, None) for i, t in zip(ids, gold)], args.concurrency)
                )
                r["gold"] = [d["text"] for d in done]
                r["models"] = sorted({d["model"] for d in done})
                for sig in SIGNALS:
                    for val in (0.1, 0.9):
                        r[(sig, val)] = [
                            d["text"]
                            for d in asyncio.run(
                                _many(
                                    srv.ws_url,
                                    [({"profile": "companion"}, t, {sig: val}) for t in texts],
                                    args.concurrency,
                                )
                            )
                        ]
                jobs = [({"profile": "companion"}, t, {"strategy": s}) for s in STRATEGIES for t in strat_texts]
                r["strategy"] = [
                    (job[2]["strategy"], d["text"])
                    for job, d in zip(jobs, asyncio.run(_many(srv.ws_url, jobs, args.concurrency)))
                ]
                print(
                    f"{name}: {len(done)} + {len(texts) * 6} + {len(jobs)} replies in {time.time() - t0:.0f} s "
                    f"(model {r['models']})",
                    flush=True,
                )
        finally:
            asyncio.run(engine.stop())

    text_model = load_text_model(default_text_model_dir(), threads=2)
    clf = strategy_classifier(Path(args.strategy_train))
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    chrf = CHRF()
    refs = [t.reply for t in gold]
    measures = {
        "verbosity": lambda rs: np.array([len(x.split()) for x in rs], float),
        "formality": lambda rs: np.array([read_style(x).formality for x in rs], float),
        "empathy": lambda rs: warmth(text_model, rs),
    }
    summary = {}
    print(
        "\n| model | ROUGE-L | chrF | distinct-2 | mean words | complete | d_z verbosity | d_z formality | d_z empathy "
        "| strategy adherence | first token p50 / p95 ms | tokens/s p50 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ("adapter", "base"):
        r = results[name]
        hyps = r["gold"]
        rouge = float(np.mean([scorer.score(ref, hyp)["rougeL"].fmeasure for ref, hyp in zip(refs, hyps)]))
        chrf_score = chrf.corpus_score(hyps, [refs]).score
        every = hyps + [x for k, v in r.items() if isinstance(k, tuple) for x in v] + [x for _, x in r["strategy"]]
        comp = float(np.mean([complete(x) for x in every]))
        dz = {sig: d_z(measures[sig](r[(sig, 0.1)]), measures[sig](r[(sig, 0.9)])) for sig in SIGNALS}
        forced = [s for s, _ in r["strategy"]]
        read = clf.predict([x for _, x in r["strategy"]])
        adherence = float(np.mean([a == b for a, b in zip(forced, read)]))
        first = r["first_token_ms"]
        s = {
            "rougeL": rouge,
            "chrf": chrf_score,
            "distinct2": distinct2(hyps),
            "words": float(np.mean([len(h.split()) for h in hyps])),
            "complete": comp,
            "complete_n": len(every),
            **{f"dz_{k}": v for k, v in dz.items()},
            "strategy": adherence,
            "first_token_p50": statistics.median(first),
            "first_token_p95": float(np.percentile(first, 95)),
            "tokens_per_s": statistics.median(r["tokens_per_s"]),
            "models": r["models"],
        }
        summary[name] = s
        print(
            f"| {name} | {rouge:.4f} | {chrf_score:.2f} | {s['distinct2']:.3f} | {s['words']:.1f} | {comp:.3f} of "
            f"{len(every)} | {dz['verbosity']:+.2f} | {dz['formality']:+.2f} | {dz['empathy']:+.2f} | {adherence:.3f} | "
            f"{s['first_token_p50']:.0f} / {s['first_token_p95']:.0f} | {s['tokens_per_s']:.1f} |"
        )
    by_length = chrf_by_length(refs, results["adapter"]["gold"], results["base"]["gold"])
    summary["chrf_by_length"] = by_length
    print(
        f"chrF and reply length: at beta=1 adapter {by_length['adapter_beta1']:.2f}, base {by_length['base_beta1']:.2f}; "
        f"base cut to the adapter's lengths (beta=2) {by_length['base_cut_to_adapter_length']:.2f}"
    )
    for sig in SIGNALS:
        for name in ("adapter", "base"):
            lo, hi = measures[sig](results[name][(sig, 0.1)]), measures[sig](results[name][(sig, 0.9)])
            print(f"  {name} {sig}: mean at 0.1 {lo.mean():.3f}, at 0.9 {hi.mean():.3f}")
    samples = [
        {
            "seeker": t.user,
            "gold": t.reply,
            "base": results["base"]["gold"][i],
            "adapter": results["adapter"]["gold"][i],
        }
        for i, t in enumerate(gold[:10])
    ]
    (work / "samples.json").write_text(json.dumps(samples, indent=1))
    # every reply scored, to read what a d_z stands for: per arm, the gold-turn replies, each signal's low and high
    # replies (same situations, in order) and the forced-strategy replies
    replies = {
        name: {
            "gold": r["gold"],
            **{f"{sig}@{val}": r[(sig, val)] for sig in SIGNALS for val in (0.1, 0.9)},
            "strategy": [{"forced": s, "reply": x} for s, x in r["strategy"]],
        }
        for name, r in results.items()
    }
    (work / "replies.json").write_text(json.dumps({"situations": texts, **replies}, indent=1))
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nten sample replies: {work / 'samples.json'}; every reply: {work / 'replies.json'}")
    slow = summary["adapter"]["first_token_p50"] / summary["base"]["first_token_p50"] - 1
    print(
        f"engine first token with the adapter: {slow:+.1%} vs base (p50, {len(results['base']['first_token_ms'])} prompts)"
    )
    for name in ("adapter", "base"):
        s = summary[name]
        print(
            f"{name}: rougeL={s['rougeL']:.4f} chrf={s['chrf']:.2f} dz_verbosity={s['dz_verbosity']:.2f} "
            f"dz_formality={s['dz_formality']:.2f} dz_empathy={s['dz_empathy']:.2f} strategy={s['strategy']:.3f} "
            f"complete={s['complete']:.3f}"
        )
    return 0
