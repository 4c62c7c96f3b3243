"""`persona-agent analyze text|safety|voice|face`: JSONL, one line per input, in order."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from agent import ImageError, InvalidAudio, load_face_perceiver, load_voice_models
from agent.analysis import (
    analyze_face,
    analyze_texts,
    analyze_voice,
    assess_texts,
    load_risk_model,
    load_warning_signs,
)
from cli.batchfiles import InputFileError, read_messages
from perception.safety import load_risk_features
from perception.text_model import load_text_model
from server.results import as_json


def _read_all(files: Sequence[Path], command: str) -> list[list[str]] | None:
    try:
        return [read_messages(f) for f in files]
    except InputFileError as exc:
        print(f"persona-agent analyze {command}: {exc}", file=sys.stderr)
        return None


def run_safety(files: Sequence[Path], output: Path | None, threads: int) -> int:
    batches = _read_all(files, "safety")
    if batches is None:
        return 2
    model = load_risk_features(load_text_model(None, threads=threads), threads=threads)
    risk, signs = load_risk_model(), load_warning_signs()
    out: TextIO = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115 (closed in finally)
    try:
        for messages in batches:
            for s in range(0, len(messages), 256):
                for text, r in zip(messages[s : s + 256], assess_texts(model, risk, messages[s : s + 256], signs)):
                    out.write(
                        json.dumps(
                            {
                                "text": text,
                                "risk": r.risk,
                                "level": r.level,
                                "score": r.score,
                                "rule": r.rule,
                                "category": r.category,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
    finally:
        if output:
            out.close()
    return 0


def run_text(files: Sequence[Path], output: Path | None, model_dir: Path | None, explain: bool, threads: int) -> int:
    batches = _read_all(files, "text")
    if batches is None:
        return 2
    model = load_text_model(model_dir, threads=threads)
    out: TextIO = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115 (closed in finally)
    try:
        for messages in batches:
            for s in range(0, len(messages), 256):
                for a in analyze_texts(model, messages[s : s + 256], explain=explain):
                    out.write(json.dumps(as_json(a), ensure_ascii=False) + "\n")
    finally:
        if output:
            out.close()
    return 0


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".webm")


def audio_files(paths: Sequence[Path]) -> list[Path]:
    return _files(paths, AUDIO_EXTENSIONS)


def run_voice(paths: Sequence[Path], output: Path | None, threads: int) -> int:
    """One JSONL line per file, in order; a file that cannot be read gets an `error` line and exit code 2."""
    from server.settings import Settings

    files = audio_files(paths)
    if not files:
        print("persona-agent analyze voice: no audio files found", file=sys.stderr)
        return 2
    settings = Settings(model_threads=threads)
    cfg = settings.agent_config()
    models = load_voice_models(cfg)
    text_model = load_text_model(cfg.text_model_dir, threads=threads)
    return _jsonl_per_file(
        files,
        output,
        "voice",
        (InvalidAudio, OSError),
        "invalid_audio",
        lambda f: as_json(analyze_voice(models, text_model, f.read_bytes(), path=str(f))),
    )


def _jsonl_per_file(
    files: Sequence[Path],
    output: Path | None,
    command: str,
    errors: tuple[type[Exception], ...],
    code: str,
    analyze_one,
) -> int:
    """One JSONL line per file, in order; a file that fails with one of `errors` gets an `error` line (its own
    `code` attribute, else `code`), a message on stderr, and makes the exit code 2."""
    failed = 0
    out: TextIO = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115 (closed in finally)
    try:
        for f in files:
            try:
                line = analyze_one(f)
            except errors as exc:
                failed += 1
                line = {"path": str(f), "error": {"code": getattr(exc, "code", code), "message": str(exc)}}
                print(f"persona-agent analyze {command}: {f}: {exc}", file=sys.stderr)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        if output:
            out.close()
    return 2 if failed else 0


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _files(paths: Sequence[Path], extensions: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in extensions)
        else:
            out.append(p)
    return out


def run_face(paths: Sequence[Path], output: Path | None, crops: bool, explain: bool, backend: str, threads: int) -> int:
    """One JSONL line per image, in order: {"path", "faces": [{"box", "score", "emotions"}]}; an unreadable image gets
    an `error` line and exit code 2."""
    from server.settings import Settings

    files = _files(paths, IMAGE_EXTENSIONS)
    if not files:
        print("persona-agent analyze face: no images found", file=sys.stderr)
        return 2
    cfg = Settings(model_threads=threads, face_backend=backend).agent_config()
    perceiver = load_face_perceiver(cfg)
    return _jsonl_per_file(
        files,
        output,
        "face",
        (ImageError, OSError),
        "unreadable",
        lambda f: {"path": str(f), **as_json(analyze_face(perceiver, f.read_bytes(), crops, explain))},
    )


# --- the `persona-agent analyze` subcommands (cli/main.py) ----------------------------------------------------------


def text_command(args: argparse.Namespace) -> int:
    return run_text(args.files, args.output, args.model, args.explain, args.threads)


def safety_command(args: argparse.Namespace) -> int:
    return run_safety(args.files, args.output, args.threads)


def voice_command(args: argparse.Namespace) -> int:
    return run_voice(args.paths, args.output, args.threads)


def face_command(args: argparse.Namespace) -> int:
    return run_face(args.paths, args.output, args.crops, args.explain, args.backend, args.threads)
