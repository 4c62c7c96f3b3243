"""Declarative policy: readable YAML rules map PersonaState (+ profile base, + client overrides) to ControlSignals.

A rule is `{name, when: {field: {op: value}}, set: {signal: value | {mirror: field}}, why}`. Rules run in file
order; a later rule that fires overrides an earlier one's value. Every firing is recorded with the inputs it saw.
Ops: lt, le, gt, ge, eq, in. Fields: any PersonaState scalar, plus `p_<label>` for a class probability.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from perception import LABELS
from persona.controls import SCALAR_SIGNALS, ControlSignals, coerce_signals
from persona.safemode import SafeMode
from persona.state import PersonaState

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "in": lambda a, b: a in b,
}
_STATE_FIELDS = (
    "valence",
    "arousal",
    "stress",
    "dominant_emotion",
    "confidence",
    "trend",
    "formality",
    "verbosity",
    "turns",
)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: tuple[tuple[str, str, object], ...]  # (field, op, operand)
    set: tuple[tuple[str, object], ...]  # (signal, literal | ("mirror", field))
    why: str


@dataclass(frozen=True, slots=True)
class RuleFiring:
    rule: str
    inputs: Mapping[str, object]
    set: Mapping[str, object]
    why: str


@dataclass(frozen=True, slots=True)
class Decision:
    controls: ControlSignals
    fired: tuple[RuleFiring, ...]
    overridden: Mapping[str, object]
    rejected_overrides: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RiskInput:
    """What the safety layer found in the user's message."""

    level: Literal["none", "caution", "crisis"]
    score: float
    rule: str | None
    safe_mode: SafeMode | None = None  # the session's sticky safe mode (after a crisis), if active
    category: str | None = None  # the warning-sign category read by meaning, if any


@dataclass(frozen=True, slots=True)
class OverrideLimits:
    """Per signal, the [lo, hi] a client override may set; signals not listed cannot be overridden."""

    ranges: Mapping[str, tuple[float, float]]
    strategies: bool = True


def _features(state: PersonaState) -> dict[str, object]:
    feats: dict[str, object] = {f: getattr(state, f) for f in _STATE_FIELDS}
    feats.update({f"p_{k}": v for k, v in zip(LABELS, state.distribution)})
    return feats


def _named(category: str | None) -> str:
    """The warning-sign category for a rule's `why`, when the safety layer read one."""
    return f" (warning sign: {category.replace('_', ' ')})" if category else ""


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]

    def decide(
        self,
        state: PersonaState,
        base: ControlSignals,
        overrides: Mapping[str, object] | None = None,
        limits: OverrideLimits | None = None,
        risk: RiskInput | None = None,
    ) -> Decision:
        feats = _features(state)
        values: dict[str, object] = {}
        fired: list[RuleFiring] = []
        for rule in self.rules:
            if all(_OPS[op](feats[f], arg) for f, op, arg in rule.when):
                setv = {k: (_round(feats[v[1]]) if isinstance(v, tuple) else v) for k, v in rule.set}
                values.update(setv)
                fired.append(
                    RuleFiring(
                        rule=rule.name, inputs={f: _round(feats[f]) for f, _, _ in rule.when}, set=setv, why=rule.why
                    )
                )
        # The safety layer outranks every rule and every override.
        if risk is not None and risk.level == "crisis":
            values.update(
                safety_mode="crisis",
                empathy=1.0,
                warmth=1.0,
                assertiveness=0.3,
                pace=0.2,
                strategy="Affirmation and Reassurance",
            )
            fired.append(
                RuleFiring(
                    rule="safety_layer",
                    inputs={"risk_score": risk.score, "rule": risk.rule, "category": risk.category},
                    set={"safety_mode": "crisis"},
                    why="Crisis or self-harm risk"
                    + _named(risk.category)
                    + ": fixed supportive reply with crisis resources; no free "
                    "generation.",
                )
            )
        elif risk is not None and risk.safe_mode is not None and risk.safe_mode.active:
            values.update(
                safety_mode="safe",
                empathy=1.0,
                warmth=0.9,
                assertiveness=0.2,
                pace=0.3,
                strategy="Affirmation and Reassurance",
            )
            fired.append(
                RuleFiring(
                    rule="safe_mode",
                    inputs={"risk_score": risk.score, **risk.safe_mode.as_dict()},
                    set={"safety_mode": "safe"},
                    why=risk.safe_mode.why,
                )
            )
        elif risk is not None and (risk.level == "caution" or (risk.safe_mode is not None and risk.safe_mode.carried)):
            carried = risk.level != "caution"
            values.update(
                safety_mode="caution",
                empathy=0.9,
                warmth=0.9,
                assertiveness=0.3,
                strategy="Affirmation and Reassurance",
            )
            fired.append(
                RuleFiring(
                    rule="safety_caution_carried" if carried else "safety_caution",
                    inputs={
                        "risk_score": risk.score,
                        "category": risk.category,
                        **(
                            {"caution_turn": risk.safe_mode.caution_turn}
                            if carried and risk.safe_mode is not None
                            else {}
                        ),
                    },
                    set={"safety_mode": "caution"},
                    why=(
                        "The previous message read as possible distress: the careful reply holds for this turn too."
                        if carried
                        else "Possible distress"
                        + _named(risk.category)
                        + ": careful reply that points to people and services who can help."
                    ),
                )
            )
        controls = base.with_values(values)
        applied, rejected = apply_overrides(overrides or {}, limits)
        if applied and controls.safety_mode not in ("crisis", "safe"):
            controls = controls.with_values(applied)
        elif applied:
            rejected.update({k: f"overrides are ignored in {controls.safety_mode} mode" for k in applied})
            applied = {}
        return Decision(controls=controls, fired=tuple(fired), overridden=applied, rejected_overrides=rejected)


def apply_overrides(
    overrides: Mapping[str, object], limits: OverrideLimits | None
) -> tuple[dict[str, object], dict[str, str]]:
    """Split client overrides into those the profile allows (clamped into its ranges) and rejected ones, with why."""
    applied: dict[str, object] = {}
    rejected: dict[str, str] = {}
    limits = limits or OverrideLimits(ranges={})
    for name, value in overrides.items():
        if name == "safety_mode":
            rejected[name] = "safety mode is set by the safety layer only"
            continue
        try:
            value = coerce_signals({name: value})[name]
        except ValueError as exc:
            rejected[name] = str(exc)
            continue
        if name == "strategy":
            if limits.strategies:
                applied[name] = value
            else:
                rejected[name] = "this profile does not allow choosing the strategy"
        elif name in limits.ranges:
            lo, hi = limits.ranges[name]
            applied[name] = min(hi, max(lo, float(value)))  # clamp into the profile's range
        else:
            rejected[name] = "this profile does not allow overriding it"
    return applied, rejected


def _round(v: object) -> object:
    return round(v, 4) if isinstance(v, float) else v


def _parse_rule(raw: Mapping[str, Any]) -> Rule:  # one rule as YAML gives it
    name = str(raw["name"])
    when: list[tuple[str, str, object]] = []
    for f, cond in dict(raw.get("when") or {}).items():
        if f not in _STATE_FIELDS and not (f.startswith("p_") and f[2:] in LABELS):
            raise ValueError(f"rule {name!r}: unknown field {f!r}")
        for op, arg in dict(cond).items():
            if op not in _OPS:
                raise ValueError(f"rule {name!r}: unknown op {op!r} (use one of {sorted(_OPS)})")
            when.append((f, op, tuple(arg) if op == "in" else arg))
    sets: list[tuple[str, object]] = []
    for sig, val in dict(raw["set"]).items():
        if isinstance(val, Mapping):
            src = val.get("mirror")
            if sig not in SCALAR_SIGNALS or src not in ("formality", "verbosity"):
                raise ValueError(f"rule {name!r}: only formality/verbosity can be mirrored into a scalar signal")
            sets.append((sig, ("mirror", src)))
        else:
            coerce_signals({sig: val})
            sets.append((sig, val))
    return Rule(name=name, when=tuple(when), set=tuple(sets), why=str(raw.get("why", "")))


def load_policy(path: str | Path | None = None) -> Policy:
    """Rules from a YAML file; the packaged `rules.yaml` when no path is given."""
    text = Path(path).read_text() if path else resources.files("persona").joinpath("rules.yaml").read_text()
    doc = yaml.safe_load(text)
    return Policy(rules=tuple(_parse_rule(r) for r in doc["rules"]))
