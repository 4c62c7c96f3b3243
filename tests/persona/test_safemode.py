"""Sticky safe mode: entered on crisis, held over calm turns, released by the de-escalation rule; the policy obeys."""

from __future__ import annotations

from persona import (
    RELEASE_AFTER_CALM_TURNS,
    ControlSignals,
    OverrideLimits,
    PersonaState,
    RiskInput,
    SafeMode,
    load_policy,
)


def test_entered_held_then_released():
    m, change = SafeMode().step("crisis", 1)
    assert m.active and m.entered_turn == 1 and change == "entered"
    for turn in range(2, 2 + RELEASE_AFTER_CALM_TURNS):  # calm turns answered in safe mode
        m, change = m.step("none", turn)
        assert m.active and change is None and m.calm_turns == turn - 1
    m, change = m.step("none", 2 + RELEASE_AFTER_CALM_TURNS)
    assert not m.active and change == "released"


def test_caution_or_crisis_starts_the_count_again():
    m, _ = SafeMode().step("crisis", 1)
    m, _ = m.step("none", 2)
    m, _ = m.step("caution", 3)
    assert m.active and m.calm_turns == 0
    m, change = m.step("crisis", 4)
    assert m.active and m.entered_turn == 1 and change is None  # still the same episode


def test_calm_session_never_enters():
    m, change = SafeMode().step("caution", 1)
    assert not m.active and change is None


def test_policy_answers_safe_mode_and_ignores_overrides():
    policy = load_policy()
    active, _ = SafeMode().step("crisis", 1)
    limits = OverrideLimits(ranges={"formality": (0.0, 1.0)})
    d = policy.decide(
        PersonaState.initial(0.0),
        ControlSignals(),
        {"formality": 0.9},
        limits,
        RiskInput(level="none", score=0.01, rule=None, safe_mode=active),
    )
    assert d.controls.safety_mode == "safe" and "safe_mode" in [f.rule for f in d.fired]
    assert d.rejected_overrides["formality"] == "overrides are ignored in safe mode"
    normal = policy.decide(PersonaState.initial(0.0), ControlSignals(), {"formality": 0.9}, limits)
    assert normal.controls.formality == 0.9
    calm = policy.decide(
        PersonaState.initial(0.0),
        ControlSignals(),
        None,
        None,
        RiskInput(level="none", score=0.01, rule=None, safe_mode=SafeMode()),
    )
    assert calm.controls.safety_mode == "normal"


def test_a_caution_carries_into_the_next_turn_only():
    """The conversation so far: the message right after a caution turn is answered under caution too (rule
    safety_caution_carried); the one after that, read as none again, is normal."""
    policy = load_policy()
    m, _ = SafeMode().step("none", 1)
    assert not m.carried
    m, _ = m.step("caution", 2)
    assert m.caution_turn == 2 and not m.carried and not m.active
    m, _ = m.step("none", 3)
    assert m.carried
    d = policy.decide(
        PersonaState.initial(0.0),
        ControlSignals(),
        None,
        None,
        RiskInput(level="none", score=0.02, rule=None, safe_mode=m),
    )
    assert d.controls.safety_mode == "caution"
    assert [f for f in d.fired if f.rule == "safety_caution_carried"][0].inputs["caution_turn"] == 2
    m, _ = m.step("none", 4)
    assert not m.carried
    d = policy.decide(
        PersonaState.initial(0.0),
        ControlSignals(),
        None,
        None,
        RiskInput(level="none", score=0.02, rule=None, safe_mode=m),
    )
    assert d.controls.safety_mode == "normal"


def test_released_safe_mode_keeps_the_caution_record():
    m, _ = SafeMode().step("crisis", 1)
    m, _ = m.step("caution", 2)
    for turn in range(3, 4 + RELEASE_AFTER_CALM_TURNS):
        m, change = m.step("none", turn)
    assert change == "released" and not m.active and m.caution_turn == 2
