"""The `persona-agent` command line: one object per subcommand, each declaring its arguments and how it runs.

serve · keys create|list|revoke · forget · chat · schema · analyze text|safety|voice|face ·
train text|safety|warning-signs|face|fusion|adapter|deepface|voice|strategy · eval fusion|strategy|replies
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from perception.environment import configure_third_party
from training import args as training_args
from tuning import args as tuning_args

if TYPE_CHECKING:
    from server.auth import KeyStore

Args = argparse.Namespace


class Command(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def help(self) -> str: ...

    def configure(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: Args) -> int: ...


@dataclass(frozen=True)
class Group:
    """A command with subcommands (`keys create`, `train text`, ...)."""

    name: str
    help: str
    commands: Sequence[Command | Group]

    def add_to(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        p = sub.add_parser(self.name, help=self.help)
        children = p.add_subparsers(dest=f"{self.name}_command", required=True)
        for c in self.commands:
            _add(children, c)


def _add(sub: argparse._SubParsersAction[argparse.ArgumentParser], c: Command | Group) -> None:
    if isinstance(c, Group):
        c.add_to(sub)
        return
    p = sub.add_parser(c.name, help=c.help)
    c.configure(p)
    p.set_defaults(run=c.run)


@dataclass(frozen=True)
class Lazy:
    """A command whose work lives in a heavy module, imported only when it runs: `module.function(args)`, its
    arguments declared by `configure` (kept import-light)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    target: str  # "package.module:function"; the function returns an exit code or None (0)

    def run(self, args: Args) -> int:
        module, function = self.target.split(":")
        code = getattr(importlib.import_module(module), function)(args)
        return int(code or 0)


# --- serve ---------------------------------------------------------------------------------------------------------


class Serve:
    name, help = "serve", "run the server (embedded vLLM on CPU unless LLM_BASE_URL is set)"

    def configure(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--profile", help="default agent profile")
        p.add_argument(
            "--require-auth", action="store_true", help="require API keys on loopback too (always on beyond it)"
        )
        p.add_argument(
            "--workers", type=int, default=1, help="worker processes behind the one port (shared store needed)"
        )

    def run(self, args: Args) -> int:
        import os
        import shutil
        import tempfile

        multiproc_dir = None
        if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # before prometheus_client is imported anywhere: every worker writes its metrics here, /metrics reads all
            multiproc_dir = tempfile.mkdtemp(prefix="persona-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir

        import uvicorn

        from server.app import create_app
        from server.logs import configure_logging
        from server.protocol import MAX_WS_MESSAGE_BYTES
        from server.settings import Settings

        overrides = {
            k: v
            for k, v in {
                "host": args.host,
                "port": args.port,
                "default_profile": args.profile,
                "require_auth": True if args.require_auth else None,
            }.items()
            if v is not None
        }
        settings = Settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        if args.workers <= 1:
            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                ws_max_size=MAX_WS_MESSAGE_BYTES,
                ws_per_message_deflate=settings.ws_compression,
                timeout_graceful_shutdown=settings.shutdown_grace_s,
            )
            return 0
        # Several worker processes behind one port: each loads the perception models once; they share the session
        # store (SQLite file or Redis) and the LLM. The embedded engine, if any, is started here once, not per worker.
        if settings.agent_config().store == "memory":
            print(
                "persona-agent serve: --workers needs a shared store (PERSONA_STORE=sqlite or redis)", file=sys.stderr
            )
            return 2
        for k, v in overrides.items():
            os.environ[f"PERSONA_{k.upper()}"] = str(v)
        engine = None
        if not settings.llm_base_url:
            from agent.llm import EmbeddedEngine

            cfg = settings.runtime_config().embedded
            engine = EmbeddedEngine(cfg)
            engine.start_sync()  # supervised from this parent process by a thread, while uvicorn runs the workers
            os.environ["LLM_BASE_URL"] = engine.base_url
            os.environ["LLM_MODEL"] = cfg.model_name
            os.environ["LLM_API_KEY"] = cfg.api_key  # the workers' only way in to the engine
        try:
            uvicorn.run(
                "server.app:app_from_env",
                factory=True,
                workers=args.workers,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                ws_max_size=MAX_WS_MESSAGE_BYTES,
                ws_per_message_deflate=settings.ws_compression,
                timeout_graceful_shutdown=settings.shutdown_grace_s,
            )
        finally:
            if engine is not None:
                engine.stop_sync()
            if multiproc_dir is not None:
                shutil.rmtree(multiproc_dir, ignore_errors=True)
        return 0


# --- keys and forget ------------------------------------------------------------------------------------------------


def _key_store() -> KeyStore:
    from server.auth import KeyStore
    from server.settings import Settings

    return KeyStore(Settings().key_store_path())


class KeysCreate:
    name, help = "create", "create a key and print it"

    def configure(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", required=True)
        p.add_argument("--rate", type=int, default=60, help="user messages and camera frames per minute")
        p.add_argument("--sessions", type=int, default=4, help="concurrent WebSocket sessions")
        p.add_argument(
            "--tenant",
            help="the tenant whose data the key reaches (default: a tenant of its own); keys of "
            "one tenant share sessions and users",
        )
        p.add_argument(
            "--scope",
            choices=("full", "chat"),
            default="full",
            help="full: a secret key, for your servers (every route); chat: a publishable key, for web "
            "pages and apps (conversations only; users vouched for by a user token)",
        )

    def run(self, args: Args) -> int:
        key, token = _key_store().create(args.name, args.rate, args.sessions, tenant=args.tenant, scope=args.scope)
        kind = "secret" if key.secret else "publishable"
        print(
            f"created {kind} key {key.id} ({key.name}) of tenant {key.principal}: {key.rate_per_min}/min, "
            f"{key.max_sessions} sessions",
            file=sys.stderr,
        )
        print(token)  # the only time it is shown
        return 0


class KeysList:
    name, help = "list", "list keys (ids and limits, never the keys)"

    def configure(self, p: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: Args) -> int:
        for key in _key_store().list():
            print(
                f"{key.id}  {key.name:<20} {key.scope:<4} tenant {key.principal:<14} {key.rate_per_min:>5}/min "
                f"{key.max_sessions:>3} sessions{'  REVOKED' if key.revoked else ''}"
            )
        return 0


class KeysRevoke:
    name, help = "revoke", "revoke a key by id"

    def configure(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("id")

    def run(self, args: Args) -> int:
        if _key_store().revoke(args.id):
            print(f"revoked {args.id}")
            return 0
        print(f"no key {args.id}", file=sys.stderr)
        return 2


class Forget:
    name, help = "forget", "erase a user's data (persona and sessions) or one session from the store"

    def configure(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--tenant", default="local", help="the tenant (a key's tenant; `local` when auth is off)")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="a user_id")
        who.add_argument("--session", help="a session_id")

    def run(self, args: Args) -> int:
        return asyncio.run(self._forget(args))

    async def _forget(self, args: Args) -> int:
        from agent import open_agent_store
        from server.settings import Settings

        store = open_agent_store(Settings().agent_config())
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


# --- chat and schema ------------------------------------------------------------------------------------------------


class Chat:
    name, help = "chat", "chat with a running server from the terminal"

    def configure(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default="ws://127.0.0.1:8000/v1/chat")
        p.add_argument("--profile")
        p.add_argument("--key", help="API key (when the server requires one)")

    def run(self, args: Args) -> int:
        return asyncio.run(self._chat(args.url, args.profile, args.key))

    async def _chat(self, url: str, profile: str | None, key: str | None) -> int:
        from persona_client import PersonaClient, ServerError

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


class Schema:
    name, help = "schema", "print (or write) the wire protocol's JSON schema"

    def configure(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--output", type=Path)

    def run(self, args: Args) -> int:
        from server.protocol import json_schema

        text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0


# --- analyze --------------------------------------------------------------------------------------------------------


def _files_in(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    p.add_argument("--threads", type=int, default=2)


def _paths_in(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, help="files or folders")
    p.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    p.add_argument("--threads", type=int, default=2)


def _analyze_text_args(p: argparse.ArgumentParser) -> None:
    _files_in(p)
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--explain", action="store_true", help="add per-word attributions (occlusion)")


def _analyze_face_args(p: argparse.ArgumentParser) -> None:
    _paths_in(p)
    p.add_argument("--crops", action="store_true", help="each image is one aligned face crop (as in FER-2013)")
    p.add_argument("--explain", action="store_true", help="add a 6x6 occlusion saliency grid per face")
    p.add_argument("--backend", choices=("keras", "deepface"), default="keras")


ANALYZE = Group(
    "analyze",
    "batch analysis to JSONL",
    [
        Lazy(
            "text",
            "text emotion per message: .txt (a line each), .csv (`text` column), .tsv (text first)",
            _analyze_text_args,
            "cli.analyze:text_command",
        ),
        Lazy(
            "safety",
            "crisis / self-harm risk per message (same input formats as `analyze text`)",
            _files_in,
            "cli.analyze:safety_command",
        ),
        Lazy(
            "voice",
            "transcript, prosody and voice emotion per audio file (WAV, FLAC, OGG, MP3)",
            _paths_in,
            "cli.analyze:voice_command",
        ),
        Lazy(
            "face",
            "faces and their expression per image (JPEG/PNG files or folders)",
            _analyze_face_args,
            "cli.analyze:face_command",
        ),
    ],
)

# --- train and eval -------------------------------------------------------------------------------------------------

TRAIN = Group(
    "train",
    "train a shipped model",
    [
        Lazy(
            "text",
            "fine-tune MiniLM-L6 on GoEmotions and export int8 ONNX",
            training_args.add_text_arguments,
            "training.text:train",
        ),
        Lazy(
            "safety",
            "fit the crisis-risk classifier on shared/data/crisis, report out-of-fold figures",
            training_args.add_safety_arguments,
            "training.safety:train",
        ),
        Lazy(
            "warning-signs",
            "fit the warning-sign scorer on training/warning_signs (halves A and B), thresholds out of fold",
            training_args.add_warning_sign_arguments,
            "training.warning_signs:train",
        ),
        Lazy(
            "face",
            "train the facial-expression CNN on FER-2013 (Keras 3, torch backend)",
            training_args.add_face_arguments,
            "training.face:train",
        ),
        Lazy(
            "fusion",
            "train the gated fusion network on cross-dataset triplets",
            training_args.add_fusion_arguments,
            "training.fusion:train",
        ),
        Lazy(
            "adapter",
            "train the control-following LoRA adapter on ESConv-format dialogues",
            tuning_args.add_adapter_arguments,
            "tuning.adapter:train",
        ),
        Lazy(
            "deepface",
            "train deepface's emotion architecture on FER-2013 (PyTorch), so DeepFace runs offline",
            training_args.add_deepface_arguments,
            "training.deepface_emotion:train",
        ),
        Lazy(
            "strategy",
            "fit the learned strategy chooser on ESConv (train; L2 chosen on valid)",
            training_args.add_strategy_arguments,
            "training.strategy_chooser:train",
        ),
        Lazy(
            "voice",
            "fit the prosody head on RAVDESS, report leave-one-actor-out CV",
            training_args.add_voice_arguments,
            "training.voice:train",
        ),
    ],
)

EVAL = Group(
    "eval",
    "evaluate a shipped model on data you give",
    [
        Lazy(
            "fusion",
            "fusion vs each modality on triplets built from your splits",
            training_args.add_fusion_eval_arguments,
            "training.fusion:eval_cli",
        ),
        Lazy(
            "strategy",
            "the served policy's strategy at every supporter turn of an ESConv-format file, against the supporter's",
            tuning_args.add_strategy_eval_arguments,
            "tuning.eval_strategy:eval_cli",
        ),
        Lazy(
            "replies",
            "reply quality and controllability, adapter vs base model",
            tuning_args.add_replies_eval_arguments,
            "tuning.eval_replies:run",
        ),
        Lazy(
            "tools",
            "whether replies to a continued tool turn state the tool output's facts, adapter vs base model",
            tuning_args.add_tools_eval_arguments,
            "tuning.tool_examples:eval_cli",
        ),
    ],
)

COMMANDS: tuple[Command | Group, ...] = (
    Serve(),
    Group(
        "keys",
        "manage API keys (stored hashed; a key is shown once, at creation)",
        [KeysCreate(), KeysList(), KeysRevoke()],
    ),
    Forget(),
    Chat(),
    Schema(),
    ANALYZE,
    TRAIN,
    EVAL,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="persona-agent", description="Emotion-aware conversational agent backend")
    sub = p.add_subparsers(dest="command", required=True)
    for c in COMMANDS:
        _add(sub, c)
    return p


def main(argv: list[str] | None = None) -> int:
    configure_third_party()
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
