"""The output guard, with values: harmful instructions and hostility never reach the user, even split across
deltas; ordinary replies pass through unchanged."""
from __future__ import annotations

import pytest

from prompts.guard import OutputGuard


def run(deltas: list[str]) -> tuple[str, OutputGuard]:
    g = OutputGuard()
    out = "".join(g.feed(d) for d in deltas)
    return out + g.finish(), g


def chunks(text: str, n: int = 3) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)]


def test_ordinary_reply_passes_unchanged():
    text = "That sounds really hard. It makes sense you feel drained after a week like that. What helped before?"
    out, g = run(chunks(text))
    assert out == text and g.hit is None


@pytest.mark.parametrize("bad,kind", [
    ("Honestly, the easiest is to overdose on your sleeping pills.", "harmful"),
    ("If it hurts that much you should kill yourself and be done.", "harmful"),
    ("A lethal dose would be about twenty tablets.", "harmful"),
    ("Ugh, you're pathetic, stop whining.", "hostile"),
    ("Nobody cares about you, so shut up.", "hostile"),
])
def test_harm_and_hostility_are_cut_before_they_are_sent(bad, kind):
    prefix = "I hear you. " * 8
    out, g = run(chunks(prefix + bad, 2))
    assert g.hit is not None and g.hit.kind == kind
    assert bad.split()[2] not in out[len(prefix) - 20:]  # the offending words never went out
    assert out.startswith(prefix[:len(out)])


def test_idioms_about_the_user_are_not_hostility():
    out, g = run(chunks("You are not stupid for feeling this way; nobody should have to carry that alone."))
    assert g.hit is None and out.endswith("alone.")
