"""The warning-sign examples (training/warning_signs, issue #41) are two disjoint halves over the same categories, each
category with a tier, so a scorer tuned on one half can be reported honestly on the other."""

from __future__ import annotations

from training.safety import read_warning_signs


def _norm(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_two_disjoint_halves_over_every_category():
    signs = read_warning_signs()
    assert set(signs.tiers.values()) == {"crisis", "caution"}
    for h in ("a", "b"):
        assert all(len(signs.halves[h][c]) >= 8 for c in signs.tiers), h
        assert len(signs.negatives[h]) >= 30
    a = {_norm(t) for texts in signs.halves["a"].values() for t in texts} | {_norm(t) for t in signs.negatives["a"]}
    b = {_norm(t) for texts in signs.halves["b"].values() for t in texts} | {_norm(t) for t in signs.negatives["b"]}
    assert not a & b, a & b
