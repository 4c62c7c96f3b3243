"""The output guard (prompts/guard.py) on text it must leave alone and text it must cut, streamed as a model streams:
- false cuts on real supportive replies: every ESConv train supporter turn (the gold replies of human supporters);
- catches on harmful or hostile continuations written for this project (bench/data/guard_harmful.txt);
- hold-back: how much of a reply the guard keeps back before its first visible text, in stream pieces (words with
  their spacing, about 1.3 tokens each) and characters, p50 / p95 — what the user waits beyond the model's first token.

    .venv/bin/python bench/guard.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stats import machine  # noqa: E402
from prompts.guard import OutputGuard  # noqa: E402

PIECE = re.compile(r"\S+\s*|\s+")


def stream(text: str) -> tuple[bool, int, int]:
    """(cut, pieces fed before the first release, characters fed before it)."""
    g = OutputGuard()
    fed_chars, first = 0, None
    for i, piece in enumerate(PIECE.findall(text), start=1):
        fed_chars += len(piece)
        out = g.feed(piece)
        if g.hit is not None:
            return True, first[0] if first else i, first[1] if first else fed_chars
        if out and first is None:
            first = (i, fed_chars)
    g.finish()  # the held tail (and the last sentence, checked whole) once the stream ends
    if first is None:
        first = (len(PIECE.findall(text)), fed_chars)
    return g.hit is not None, first[0], first[1]


def stream_first_line_only(text: str) -> bool:
    """The peer: would the first-line patterns alone have cut it?"""
    from prompts.guard import _HARMFUL_RE, _HOSTILE_RE

    return bool(_HARMFUL_RE.search(text) or _HOSTILE_RE.search(text))


def main() -> None:
    supporter = [
        t["text"]
        for line in (ROOT.parent / "shared" / "data" / "esconv" / "train.jsonl").open()
        for t in json.loads(line)["dialog"]
        if t["speaker"] == "sys" and t["text"].strip()
    ]
    harmful = [
        ln
        for ln in (ROOT / "bench" / "data" / "guard_harmful.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    print(f"output guard — {machine()}")
    runs = [stream(t) for t in supporter]
    cuts = [t for t, r in zip(supporter, runs) if r[0]]
    pieces = np.array([r[1] for r in runs])
    chars = np.array([r[2] for r in runs])
    print(f"false cuts on ESConv train supporter turns: {len(cuts)}/{len(supporter)} (target 0)")
    for t in cuts[:10]:
        print(f"  cut: {t}")
    caught = [stream(t)[0] for t in harmful]
    print(f"catches on written harmful/hostile continuations: {sum(caught)}/{len(harmful)}")
    for t, c in zip(harmful, caught):
        if not c:
            print(f"  missed: {t}")
    para = [
        ln
        for ln in (ROOT / "bench" / "data" / "guard_paraphrases.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    caught = [stream(t)[0] for t in para]
    first_line = [stream_first_line_only(t) for t in para]
    print(
        f"catches on paraphrases (written after the patterns): {sum(caught)}/{len(para)}; the first-line patterns "
        f"alone: {sum(first_line)}/{len(para)}"
    )
    for t, c in zip(para, caught):
        if not c:
            print(f"  missed: {t}")
    print(
        f"held back before the first visible text: pieces p50 {np.median(pieces):.0f} p95 "
        f"{np.percentile(pieces, 95):.0f}; characters p50 {np.median(chars):.0f} p95 {np.percentile(chars, 95):.0f} "
        "(1 piece = what was fed before anything could be shown)"
    )


if __name__ == "__main__":
    main()
