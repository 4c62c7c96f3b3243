"""Replies end on a complete sentence: near the token cap the reply stops at the next sentence end; a reply the cap
cuts mid-sentence is trimmed back to its last complete one; short replies stream through untouched."""

from __future__ import annotations

from prompts.endings import SentenceCloser


def stream(tokens: list[str], cap: int, finish: str) -> tuple[str, SentenceCloser]:
    c = SentenceCloser(cap)
    out = []
    for t in tokens:
        out.append(c.feed(t))
        if c.stop:
            break
    else:
        out.append(c.finish(finish))
    return "".join(out), c


def test_short_replies_pass_through_as_they_stream():
    c = SentenceCloser(100)
    assert [c.feed(t) for t in ["Hi", " there", "."]] == ["Hi", " there", "."]
    assert c.finish("stop") == "" and not c.stop


def test_near_the_cap_the_reply_stops_at_the_next_sentence_end():
    words = ("word " * 70).split(" ")[:70]
    tokens = [w + " " for w in words] + ["this", " ends", " here.", " And", " then", " more"]
    out, c = stream(tokens, cap=90, finish="length")
    assert c.stop and out.endswith("this ends here.")


def test_a_reply_cut_by_the_cap_is_trimmed_to_its_last_sentence():
    tokens = ["A", " short", " one", " here", " now."] + [" And", " it", " goes", " on", " and", " on", " and"]
    out, c = stream(tokens, cap=12, finish="length")  # the last 6 tokens are held: the cap cuts them mid-sentence
    assert out == "A short one here now." and c.trimmed.strip().startswith("And it goes")


def test_a_reply_without_any_sentence_end_is_not_emptied():
    out, _ = stream(["no", " full", " stop", " at", " all"], cap=4, finish="length")
    assert out == "no full stop at all"
