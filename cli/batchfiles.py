"""Reading message files for batch analysis: .txt (one per line), .csv (a `text` column), .tsv (text first)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

MAX_LINE_CHARS = 100_000
MAX_FILE_BYTES = 512 * 1024 * 1024


class InputFileError(ValueError):
    """The file cannot be analysed; the message says why, naming the line where it helps."""


def read_messages(path: Path) -> list[str]:
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if not path.is_file():
        raise InputFileError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputFileError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES} byte limit")
    raw = path.read_bytes()
    if b"\x00" in raw[: 1 << 20]:
        raise InputFileError(f"{path}: looks binary (NUL bytes); expected UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        messages = _csv(path, text)
    elif suffix == ".tsv":
        messages = [line.split("\t", 1)[0] for line in text.splitlines()]
    elif suffix in (".txt", ""):
        messages = text.splitlines()
    else:
        raise InputFileError(f"{path}: unsupported extension {suffix!r}; use .txt, .csv or .tsv")
    for i, m in enumerate(messages, 1):
        if len(m) > MAX_LINE_CHARS:
            raise InputFileError(f"{path}: message {i} has {len(m)} characters, over the {MAX_LINE_CHARS} limit")
    if not any(m.strip() for m in messages):
        raise InputFileError(f"{path}: no messages (the file is empty)")
    return messages


def _csv(path: Path, text: str) -> list[str]:
    csv.field_size_limit(MAX_LINE_CHARS + 1)
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise InputFileError(f"{path}: no messages (the file is empty)")
    if "text" not in reader.fieldnames:
        raise InputFileError(f"{path}: no `text` column (columns: {', '.join(reader.fieldnames)})")
    try:
        return [row["text"] or "" for row in reader]
    except csv.Error as exc:
        raise InputFileError(f"{path}: line {reader.line_num}: {exc}") from None
