from __future__ import annotations

from dataclasses import replace

import pytest

from perception import LABELS
from persona import ControlSignals, OverrideLimits, PersonaState, load_policy
from persona.policy import Policy, _parse_rule


def state(**kw) -> PersonaState:
    return replace(PersonaState.initial(0.0), turns=1, **kw)


def dist(label: str, p: float = 0.8) -> tuple[float, ...]:
    rest = (1 - p) / (len(LABELS) - 1)
    return tuple(p if k == label else rest for k in LABELS)


def test_rules_fire_with_their_inputs_recorded():
    policy = load_policy()
    d = policy.decide(
        state(valence=-0.5, stress=0.7, dominant_emotion="sadness", confidence=0.8, distribution=dist("sadness")),
        ControlSignals(),
    )
    fired = {f.rule: f for f in d.fired}
    assert {"mirror_user_style", "low_mood", "sadness_dominant", "high_stress"} <= set(fired)
    assert fired["low_mood"].inputs == {"valence": -0.5}
    assert fired["high_stress"].inputs == {"stress": 0.7}
    # later rules win per signal: high_stress sets verbosity 0.3 after the style mirror
    assert d.controls.verbosity == 0.3 and d.controls.empathy == 0.9 and d.controls.strategy == "Reflection of feelings"


def test_neutral_state_only_mirrors_style():
    d = load_policy().decide(state(formality=0.9, verbosity=0.1), ControlSignals(empathy=0.42))
    assert [f.rule for f in d.fired] == ["mirror_user_style"]
    assert d.controls.formality == 0.9 and d.controls.verbosity == 0.1 and d.controls.empathy == 0.42


def test_anger_deescalates():
    d = load_policy().decide(
        state(valence=-0.1, dominant_emotion="anger", distribution=dist("anger")), ControlSignals()
    )
    assert d.controls.assertiveness == 0.25 and d.controls.strategy == "Restatement or Paraphrasing"


def test_override_limits_clamp_and_reject():
    limits = OverrideLimits(ranges={"empathy": (0.5, 1.0)}, strategies=False)
    d = load_policy().decide(
        state(),
        ControlSignals(),
        {"empathy": 0.0, "formality": 1.0, "strategy": "Information", "safety_mode": "normal", "volume": 3},
        limits,
    )
    assert d.controls.empathy == 0.5  # clamped to the profile's floor
    assert d.overridden == {"empathy": 0.5}
    assert set(d.rejected_overrides) == {"formality", "strategy", "safety_mode", "volume"}


def test_overrides_ignored_in_crisis():
    base = ControlSignals(safety_mode="crisis")
    d = Policy(rules=()).decide(state(), base, {"empathy": 0.9}, OverrideLimits(ranges={"empathy": (0, 1)}))
    assert d.controls.empathy == 0.5 and "empathy" in d.rejected_overrides


@pytest.mark.parametrize(
    "raw, msg",
    [
        ({"name": "x", "when": {"mood": {"lt": 0}}, "set": {"empathy": 1}}, "unknown field"),
        ({"name": "x", "when": {"valence": {"below": 0}}, "set": {"empathy": 1}}, "unknown op"),
        ({"name": "x", "set": {"empathy": 2}}, "in [0, 1]"),
        ({"name": "x", "set": {"strategy": "Shouting"}}, "strategy must be one of"),
    ],
)
def test_bad_rules_are_rejected_with_a_reason(raw, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        _parse_rule(raw)
