"""`persona-agent` command line: serve, chat (terminal client), schema."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from server.app import create_app
    from server.protocol import MAX_WS_MESSAGE_BYTES
    from server.logs import configure_logging
    from server.settings import Settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "default_profile": args.profile,
                                   "require_auth": True if args.require_auth else None}.items() if v is not None}
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    if args.workers <= 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                    ws_max_size=MAX_WS_MESSAGE_BYTES)
        return 0
    # Several worker processes behind one port: each loads the perception models once; they share the session store
    # (SQLite file or Redis) and the LLM. The embedded engine, if any, is started here once, not per worker.
    if settings.store == "memory":
        print("persona-agent serve: --workers needs a shared store (PERSONA_STORE=sqlite or redis)", file=sys.stderr)
        return 2
    for k, v in overrides.items():
        os.environ[f"PERSONA_{k.upper()}"] = str(v)
    engine = None
    if not settings.llm_base_url:
        from agent import EmbeddedEngine

        cfg = settings.runtime_config().embedded
        engine = EmbeddedEngine(cfg)
        asyncio.run(engine.start())
        os.environ["LLM_BASE_URL"] = engine.base_url
        os.environ["LLM_MODEL"] = cfg.served_name
    try:
        uvicorn.run("server.app:app_from_env", factory=True, workers=args.workers, host=settings.host,
                    port=settings.port, log_level=settings.log_level, ws_max_size=MAX_WS_MESSAGE_BYTES)
    finally:
        if engine is not None:
            asyncio.run(engine.stop())
    return 0


async def _chat(url: str, profile: str | None, key: str | None = None) -> int:
    from server.client import PersonaClient, ServerError

    async with PersonaClient.connect(url, profile=profile, key=key) as c:
        print(f"[session {c.session_id} · profile {c.session['profile']}] (Ctrl-D to quit)")
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return 0
            if not line.strip():
                continue
            try:
                reply = await c.ask(line.rstrip("\n"), on_delta=lambda d: print(d, end="", flush=True))
            except ServerError as exc:
                print(f"  [error {exc}]")
                continue
            print()
            for ev in reply.events:
                if ev["type"] == "perception":
                    print(f"  [{ev['modality']}: {ev['top']} {ev['emotions'][ev['top']]:.2f}]")
                elif ev["type"] == "controls":
                    ctl = ev["controls"]
                    print(f"  [empathy {ctl['empathy']} formality {ctl['formality']} strategy {ctl['strategy']}]")


def _keys(args: argparse.Namespace) -> int:
    from server.auth import KeyStore
    from server.settings import Settings

    store = KeyStore(Settings().key_store_path())
    if args.action == "create":
        key, token = store.create(args.name, args.rate, args.sessions, tenant=args.tenant)
        print(f"created key {key.id} ({key.name}) of tenant {key.principal}: {key.rate_per_min}/min, "
              f"{key.max_sessions} sessions", file=sys.stderr)
        print(token)  # the only time it is shown
        return 0
    if args.action == "list":
        for key in store.list():
            print(f"{key.id}  {key.name:<20} tenant {key.principal:<14} {key.rate_per_min:>5}/min {key.max_sessions:>3} sessions"
                  f"{'  REVOKED' if key.revoked else ''}")
        return 0
    if store.revoke(args.id):
        print(f"revoked {args.id}")
        return 0
    print(f"no key {args.id}", file=sys.stderr)
    return 2


async def _forget(args: argparse.Namespace) -> int:
    """Erase a user (persona and every session of theirs) or one session from the configured store."""
    from agent.agent import open_agent_store
    from server.settings import Settings

    store = open_agent_store(Settings().runtime_config().agent)
    try:
        if args.user:
            n = await store.delete_user(args.user, args.tenant)
            if n < 0:
                print(f"no user {args.user!r} in tenant {args.tenant!r}", file=sys.stderr)
                return 2
            print(f"erased user {args.user!r} of tenant {args.tenant!r}: persona and {n} sessions")
            return 0
        if not await store.delete_session(args.session, args.tenant):
            print(f"no session {args.session!r} in tenant {args.tenant!r}", file=sys.stderr)
            return 2
        print(f"erased session {args.session!r} of tenant {args.tenant!r}")
        return 0
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="persona-agent", description="Emotion-aware conversational agent backend")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server (embedded vLLM on CPU unless LLM_BASE_URL is set)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--profile", help="default agent profile")
    s.add_argument("--require-auth", action="store_true", help="require API keys on loopback too (always on beyond it)")
    s.add_argument("--workers", type=int, default=1, help="worker processes behind the one port (shared store needed)")
    k = sub.add_parser("keys", help="manage API keys (stored hashed; a key is shown once, at creation)")
    k_sub = k.add_subparsers(dest="action", required=True)
    kc = k_sub.add_parser("create", help="create a key and print it")
    kc.add_argument("--name", required=True)
    kc.add_argument("--rate", type=int, default=60, help="user messages and camera frames per minute")
    kc.add_argument("--sessions", type=int, default=4, help="concurrent WebSocket sessions")
    kc.add_argument("--tenant", help="the tenant whose data the key reaches (default: a tenant of its own); keys of "
                    "one tenant share sessions and users")
    k_sub.add_parser("list", help="list keys (ids and limits, never the keys)")
    kr = k_sub.add_parser("revoke", help="revoke a key by id")
    kr.add_argument("id")
    fg = sub.add_parser("forget", help="erase a user's data (persona and sessions) or one session from the store")
    fg.add_argument("--tenant", default="local", help="the tenant (a key's tenant; `local` when auth is off)")
    who = fg.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user_id")
    who.add_argument("--session", help="a session_id")
    c = sub.add_parser("chat", help="chat with a running server from the terminal")
    c.add_argument("--url", default="ws://127.0.0.1:8000/v1/chat")
    c.add_argument("--profile")
    c.add_argument("--key", help="API key (when the server requires one)")
    sc = sub.add_parser("schema", help="print (or write) the wire protocol's JSON schema")
    sc.add_argument("--output", type=Path)
    an = sub.add_parser("analyze", help="batch analysis to JSONL")
    an_sub = an.add_subparsers(dest="modality", required=True)
    at = an_sub.add_parser("text", help="text emotion per message: .txt (a line each), .csv (`text` column), .tsv (text first)")
    at.add_argument("files", nargs="+", type=Path)
    at.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    at.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    at.add_argument("--explain", action="store_true", help="add per-word attributions (occlusion)")
    at.add_argument("--threads", type=int, default=2)
    asf = an_sub.add_parser("safety", help="crisis / self-harm risk per message (same input formats as `analyze text`)")
    asf.add_argument("files", nargs="+", type=Path)
    asf.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    asf.add_argument("--threads", type=int, default=2)
    av = an_sub.add_parser("voice", help="transcript, prosody and voice emotion per audio file (WAV, FLAC, OGG, MP3)")
    av.add_argument("paths", nargs="+", type=Path, help="files or folders")
    av.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    av.add_argument("--threads", type=int, default=2)
    af = an_sub.add_parser("face", help="faces and their expression per image (JPEG/PNG files or folders)")
    af.add_argument("paths", nargs="+", type=Path, help="files or folders")
    af.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    af.add_argument("--crops", action="store_true", help="each image is one aligned face crop (as in FER-2013)")
    af.add_argument("--explain", action="store_true", help="add a 6x6 occlusion saliency grid per face")
    af.add_argument("--backend", choices=("keras", "deepface"), default="keras")
    af.add_argument("--threads", type=int, default=2)
    tr = sub.add_parser("train", help="train a shipped model")
    tr_sub = tr.add_subparsers(dest="what", required=True)
    tt = tr_sub.add_parser("text", help="fine-tune MiniLM-L6 on GoEmotions and export int8 ONNX")
    from training.args import add_adapter_arguments, add_deepface_arguments, add_replies_eval_arguments, add_face_arguments, add_fusion_arguments, add_fusion_eval_arguments, add_safety_arguments, add_text_arguments, add_voice_arguments

    add_text_arguments(tt)
    ts = tr_sub.add_parser("safety", help="fit the crisis-risk classifier on shared/data/crisis, report out-of-fold figures")
    add_safety_arguments(ts)
    tf = tr_sub.add_parser("face", help="train the facial-expression CNN on FER-2013 (Keras 3, torch backend)")
    add_face_arguments(tf)
    tfu = tr_sub.add_parser("fusion", help="train the gated fusion network on cross-dataset triplets")
    add_fusion_arguments(tfu)
    ev = sub.add_parser("eval", help="evaluate a shipped model on data you give")
    ev_sub = ev.add_subparsers(dest="what", required=True)
    add_fusion_eval_arguments(ev_sub.add_parser("fusion", help="fusion vs each modality on triplets built from your splits"))
    add_replies_eval_arguments(ev_sub.add_parser("replies", help="reply quality and controllability, adapter vs base model"))
    add_adapter_arguments(tr_sub.add_parser("adapter", help="train the control-following LoRA adapter on ESConv-format dialogues"))
    td = tr_sub.add_parser("deepface", help="train deepface's emotion architecture on FER-2013 (PyTorch), so DeepFace runs offline")
    add_deepface_arguments(td)
    tv = tr_sub.add_parser("voice", help="fit the prosody head on RAVDESS, report leave-one-actor-out CV")
    add_voice_arguments(tv)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "forget":
        return asyncio.run(_forget(args))
    if args.command == "chat":
        return asyncio.run(_chat(args.url, args.profile, args.key))
    if args.command == "analyze" and args.modality == "text":
        from server.analyze import run_text

        return run_text(args.files, args.output, args.model, args.explain, args.threads)
    if args.command == "analyze" and args.modality == "safety":
        from server.analyze import run_safety

        return run_safety(args.files, args.output, args.threads)
    if args.command == "train" and args.what == "safety":
        from training.safety import train as train_safety

        train_safety(args)
        return 0
    if args.command == "analyze" and args.modality == "voice":
        from server.analyze import run_voice

        return run_voice(args.paths, args.output, args.threads)
    if args.command == "analyze" and args.modality == "face":
        from server.analyze import run_face

        return run_face(args.paths, args.output, args.crops, args.explain, args.backend, args.threads)
    if args.command == "train" and args.what == "face":
        from training.face import train as train_face

        train_face(args)
        return 0
    if args.command == "train" and args.what == "fusion":
        from training.fusion import train as train_fusion

        train_fusion(args)
        return 0
    if args.command == "eval" and args.what == "fusion":
        from training.fusion import eval_cli

        return eval_cli(args)
    if args.command == "eval" and args.what == "replies":
        from training.eval_replies import run as eval_replies

        eval_replies(args)
        return 0
    if args.command == "train" and args.what == "adapter":
        from training.adapter import train as train_adapter

        train_adapter(args)
        return 0
    if args.command == "train" and args.what == "deepface":
        from training.deepface_emotion import train as train_deepface

        train_deepface(args)
        return 0
    if args.command == "train" and args.what == "voice":
        from training.voice import train as train_voice

        train_voice(args)
        return 0
    if args.command == "train" and args.what == "text":
        from training.text import train

        train(args)
        return 0
    if args.command == "schema":
        from server.protocol import json_schema

        text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
