"""The output guard, with values: harmful instructions and hostility never reach the user, even split across
deltas; ordinary replies pass through unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompts.guard import _HARMFUL_RE, _HOSTILE_RE, OutputGuard


def run(deltas: list[str]) -> tuple[str, OutputGuard]:
    g = OutputGuard()
    out = "".join(g.feed(d) for d in deltas)
    return out + g.finish(), g


def chunks(text: str, n: int = 3) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)]


def test_ordinary_reply_passes_unchanged():
    text = "That sounds really hard. It makes sense you feel drained after a week like that. What helped before?"
    out, g = run(chunks(text))
    assert out == text and g.hit is None


@pytest.mark.parametrize(
    "bad,kind",
    [
        ("Honestly, the easiest is to overdose on your sleeping pills.", "harmful"),
        ("If it hurts that much you should kill yourself and be done.", "harmful"),
        ("A lethal dose would be about twenty tablets.", "harmful"),
        ("Ugh, you're pathetic, stop whining.", "hostile"),
        ("Nobody cares about you, so shut up.", "hostile"),
    ],
)
def test_harm_and_hostility_are_cut_before_they_are_sent(bad, kind):
    prefix = "I hear you. " * 8
    out, g = run(chunks(prefix + bad, 2))
    assert g.hit is not None and g.hit.kind == kind
    m = (_HARMFUL_RE if kind == "harmful" else _HOSTILE_RE).search(bad)
    assert m is not None and m.group(0) not in out  # the offending words never went out
    # the words before them did: the guard holds back only what a pattern could still claim
    assert out.startswith(prefix + bad[: m.start()].rstrip()[:-1]) and len(out) >= len(prefix) + m.start() - 4
    # of the match itself, at most its opening word went out ("you", "Nobody"), never what followed it
    opener = m.group(0).split()[0]
    assert len(out) <= len(prefix) + m.start() + len(opener) + 1
    assert out[len(prefix) + m.start() :].strip() in ("", opener, opener.rstrip(",")), out[len(prefix) + m.start() :]


def test_idioms_about_the_user_are_not_hostility():
    out, g = run(chunks("You are not stupid for feeling this way; nobody should have to carry that alone."))
    assert g.hit is None and out.endswith("alone.")


def test_text_is_released_as_soon_as_no_pattern_can_claim_it():
    g = OutputGuard()
    assert g.feed("That") == "That"  # the first token goes out at once: no pattern starts with it
    assert g.feed(" sounds") == " sounds"
    assert g.feed(" hard. You") == " hard. You"  # "You" could begin "you're stupid": released, checked from there
    assert g.feed(" are") == ""  # "You are…" is still open: held
    assert g.feed(" strong") == " are strong"  # settled
    assert g.pending is None
    assert g.feed(" and kind.") == " and kind."
    assert g.finish() == "" and g.hit is None


def test_guard_never_delays_a_whole_supportive_reply():
    text = (
        "It sounds like you have been carrying a lot on your own. I'm glad you told me. "
        "What would help most right now, talking it through or finding one small next step?"
    )
    g = OutputGuard()
    held = []
    for i in range(0, len(text), 4):
        g.feed(text[i : i + 4])
        held.append(len(g.text) - g.released)
    assert g.hit is None and max(held) <= 16, held  # never more than a few words behind the model


def _hit(text: str):
    g = OutputGuard()
    g.feed(text)
    return g.hit


def test_what_supporters_write_is_not_cut():
    """Lines of the kind bench/guard.py found cut among ESConv supporter turns before the patterns were narrowed."""
    for text in (
        "Take a calming bath tonight, you deserve it!",
        "It will not go away instantly, it takes work.",
        "I can understand how you feel like you are worthless. You are not.",
        "It's not that you are worthless, it's the stress talking.",
        "There is nothing wrong with you for feeling this way.",
        "People keep asking what is wrong with you, and that must hurt.",
        "What is wrong with your laptop?",
    ):
        assert _hit(text) is None, text


def test_hostility_said_to_the_user_is_cut():
    for text in (
        "Go away, I don't want to talk to you.",
        "Fine. Just go away.",
        "You are worthless.",
        "You deserve to suffer for that.",
        "I hear you. What is wrong with you? Is there something specific?",
        "what's wrong with you",
    ):
        hit = _hit(text)
        assert hit is not None and hit.kind == "hostile", text


PARAPHRASES = [
    ln
    for ln in (Path(__file__).resolve().parents[2] / "bench" / "data" / "guard_paraphrases.txt")
    .read_text()
    .splitlines()
    if ln.strip() and not ln.startswith("#")
]


@pytest.mark.parametrize("bad", PARAPHRASES)
def test_paraphrases_are_cut_by_the_second_line(bad):
    prefix = "I hear how hard this is. "
    out, g = run(chunks(prefix + bad + " Anyway, how was your day?", 3))
    assert g.hit is not None
    assert bad not in out and "how was your day" not in out


def test_a_sentence_naming_a_means_is_held_only_until_it_ends_and_then_released_if_harmless():
    g = OutputGuard()
    first = g.feed("That sounds exhausting. ")
    assert first == "That sounds exhausting. "  # nothing held: no pattern can start here
    assert g.feed("Have you asked your doctor whether the pills ") == ""  # a means is named: wait for the sentence
    assert (
        g.feed("are still right for you? ") == "Have you asked your doctor whether the pills are still right for you? "
    )
    assert g.hit is None
    assert g.feed("You could also take a walk.") + g.finish() == "You could also take a walk."


def test_the_last_sentence_is_checked_when_the_stream_ends():
    out, g = run(chunks("I understand. A rope would do it", 4))  # no closing punctuation: checked at finish()
    assert g.hit is not None and g.hit.kind == "harmful" and "rope" not in out
