"""Declarative policy: readable YAML rules map PersonaState (+ profile base, + client overrides) to ControlSignals.

A rule is `{name, when: {field: {op: value}}, set: {signal: value | {mirror: field}}, why}`; a strategy may be a family,
`{among: [A, B]}`: the learned chooser's most probable of them (people decide what kind of reply fits, the data which
one), or the first when there is no chooser. Rules run in file
order; a later rule that fires overrides an earlier one's value. Every firing is recorded with the inputs it saw.
Ops: lt, le, gt, ge, eq, in. Fields: any PersonaState scalar (the conversation so far), `p_<label>` for a class
probability, and the message in front of it (persona/message.py): `message` (its kind), `message_emotion`,
`message_valence`, `good_news`, `about_us`, `help`, `reassurance`, `previous_strategy`.

The strategy is proposed by the learned chooser (persona/chooser.py) when one is given; a rule that sets a strategy
overrides it (the firing records what it overrode), then the profile's own rules, then client overrides; the safety
layer outranks all of them. `Decision.strategy_by` and `.strategy_why` say who decided the strategy and why.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from perception import LABELS
from persona.chooser import StrategyChoice
from persona.controls import SCALAR_SIGNALS, ControlSignals, coerce_signals
from persona.message import Moment
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
_MESSAGE_FIELDS = (
    "message",
    "message_emotion",
    "message_valence",
    "good_news",
    "about_us",
    "help",
    "reassurance",
    "previous_strategy",
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
    overrode: str | None = None  # the strategy this rule replaced (the learned chooser's, or an earlier rule's)


@dataclass(frozen=True, slots=True)
class Decision:
    controls: ControlSignals
    fired: tuple[RuleFiring, ...]
    overridden: Mapping[str, object]
    rejected_overrides: Mapping[str, str]
    strategy_by: str = "profile"  # who set the strategy: "profile", "learned_chooser", a rule's name, "override"
    strategy_why: str = ""  # that, in a sentence


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


def _features(state: PersonaState, moment: Moment | None) -> dict[str, object]:
    feats: dict[str, object] = {f: getattr(state, f) for f in _STATE_FIELDS}
    feats.update({f"p_{k}": v for k, v in zip(LABELS, state.distribution)})
    if moment is not None:  # without it, a rule on the message does not fire
        feats.update(
            message=moment.kind,
            message_emotion=moment.emotion,
            message_valence=moment.valence,
            previous_strategy=moment.previous_strategy or "none",
            good_news=moment.good_news,
            about_us=moment.about_us,
            help=moment.help,
            reassurance=moment.reassurance,
        )
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
        moment: Moment | None = None,
        choice: StrategyChoice | None = None,
        profile_rules: Sequence[Rule] = (),
        allowed: Sequence[str] | None = None,
    ) -> Decision:
        """`profile_rules` run after the shared rules; `allowed` are the strategies that fit the profile (a family
        in a rule is narrowed to them)."""
        feats = _features(state, moment)
        values: dict[str, object] = {}
        fired: list[RuleFiring] = []
        by, why = "profile", f"The profile's default strategy, {base.strategy}."
        if choice is not None:
            values["strategy"] = choice.strategy
            by, why = "learned_chooser", choice.why(moment)
            seen: dict[str, object] = {"p": choice.p}
            if moment is not None:
                seen["message"] = moment.kind
            fired.append(RuleFiring(rule=by, inputs=seen, set={"strategy": choice.strategy}, why=why))
        by, why = _run_rules((*self.rules, *profile_rules), feats, choice, allowed, values, fired, (by, why))
        if (safety := _safety(risk)) is not None:  # the safety layer outranks every rule and every override
            values.update(safety[0])
            fired.append(safety[1])
            by, why = safety[1].rule, safety[1].why
        controls = base.with_values(values)
        applied, rejected = apply_overrides(overrides or {}, limits)
        if applied and controls.safety_mode not in ("crisis", "safe"):
            controls = controls.with_values(applied)
            if "strategy" in applied:
                by, why = "override", f"The client chose {applied['strategy']}."
        elif applied:
            rejected.update({k: f"overrides are ignored in {controls.safety_mode} mode" for k in applied})
            applied = {}
        return Decision(
            controls=controls,
            fired=tuple(fired),
            overridden=applied,
            rejected_overrides=rejected,
            strategy_by=by,
            strategy_why=why,
        )


def _run_rules(
    rules: Sequence[Rule],
    feats: Mapping[str, object],
    choice: StrategyChoice | None,
    allowed: Sequence[str] | None,
    values: dict[str, object],
    fired: list[RuleFiring],
    decided: tuple[str, str],
) -> tuple[str, str]:
    """Run the rules that fire, in order, into `values` and `fired`; who decided the strategy, and why, after them."""
    by, why = decided
    for rule in rules:
        if not all(f in feats and _OPS[op](feats[f], arg) for f, op, arg in rule.when):
            continue
        before = values.get("strategy")
        setv = {k: _value(v, feats, choice, before, allowed) for k, v in rule.set}
        overrode = str(before) if "strategy" in setv and before is not None and before != setv["strategy"] else None
        values.update(setv)
        inputs = {f: _round(feats[f]) for f, _, _ in rule.when}
        fired.append(RuleFiring(rule=rule.name, inputs=inputs, set=setv, why=rule.why, overrode=overrode))
        if "strategy" in setv and setv["strategy"] == before:
            why = f"{why.rstrip('.')}, which fits the rule {rule.name}: {rule.why}"
        elif "strategy" in setv:
            by = rule.name
            over = f", over the learned chooser's {overrode}" if overrode and fired[0].rule == "learned_chooser" else ""
            why = f"The rule {rule.name} set {setv['strategy']}{over}: {rule.why}"
    return by, why


# What the safety layer sets in each of its modes (its strategy is always Affirmation and Reassurance).
_SAFETY_SIGNALS: dict[str, dict[str, object]] = {
    "crisis": {"empathy": 1.0, "warmth": 1.0, "assertiveness": 0.3, "pace": 0.2},
    "safe": {"empathy": 1.0, "warmth": 0.9, "assertiveness": 0.2, "pace": 0.3},
    "caution": {"empathy": 0.9, "warmth": 0.9, "assertiveness": 0.3},
}


def _safety(risk: RiskInput | None) -> tuple[dict[str, object], RuleFiring] | None:
    """What the safety layer sets (crisis, sticky safe mode, or caution), and its firing; None when it does not act."""
    if risk is None:
        return None
    carried = risk.level == "none" and risk.safe_mode is not None and risk.safe_mode.carried
    if risk.level == "crisis":
        mode, firing = (
            "crisis",
            RuleFiring(
                rule="safety_layer",
                inputs={"risk_score": risk.score, "rule": risk.rule, "category": risk.category},
                set={"safety_mode": "crisis"},
                why="Crisis or self-harm risk"
                + _named(risk.category)
                + ": fixed supportive reply with crisis resources; no free generation.",
            ),
        )
    elif risk.safe_mode is not None and risk.safe_mode.active:
        mode, firing = (
            "safe",
            RuleFiring(
                rule="safe_mode",
                inputs={"risk_score": risk.score, **risk.safe_mode.as_dict()},
                set={"safety_mode": "safe"},
                why=risk.safe_mode.why,
            ),
        )
    elif risk.level == "caution" or carried:
        inputs: dict[str, object] = {"risk_score": risk.score, "category": risk.category}
        if carried and risk.safe_mode is not None:
            inputs["caution_turn"] = risk.safe_mode.caution_turn
        mode, firing = (
            "caution",
            RuleFiring(
                rule="safety_caution_carried" if carried else "safety_caution",
                inputs=inputs,
                set={"safety_mode": "caution"},
                why=(
                    "The previous message read as possible distress: the careful reply holds for this turn too."
                    if carried
                    else "Possible distress" + _named(risk.category) + ": careful reply that points to people and "
                    "services who can help."
                ),
            ),
        )
    else:
        return None
    return {"safety_mode": mode, **_SAFETY_SIGNALS[mode], "strategy": "Affirmation and Reassurance"}, firing


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


def _value(
    v: object,
    feats: Mapping[str, object],
    choice: StrategyChoice | None,
    current: object,
    allowed: Sequence[str] | None,
) -> object:
    """What a rule's `set` entry gives: a literal, the user's mirrored style, or a strategy from a family (the learned
    chooser's most probable of the family; without a chooser, the current one when it is in the family, else the
    family's first)."""
    if not isinstance(v, tuple):
        return v
    if v[0] == "mirror":
        return _round(feats[v[1]])
    family: tuple[str, ...] = tuple(s for s in v[1] if allowed is None or s in allowed) or v[1]
    if choice is not None and (ranked := [s for s in family if s in choice.probs]):
        return max(ranked, key=lambda s: choice.probs[s])
    return current if current in family else family[0]


def _round(v: object) -> object:
    return round(v, 4) if isinstance(v, float) else v


def _parse_rule(raw: Mapping[str, Any]) -> Rule:  # one rule as YAML gives it
    name = str(raw["name"])
    when: list[tuple[str, str, object]] = []
    for f, cond in dict(raw.get("when") or {}).items():
        if f not in _STATE_FIELDS and f not in _MESSAGE_FIELDS and not (f.startswith("p_") and f[2:] in LABELS):
            raise ValueError(f"rule {name!r}: unknown field {f!r}")
        for op, arg in dict(cond).items():
            if op not in _OPS:
                raise ValueError(f"rule {name!r}: unknown op {op!r} (use one of {sorted(_OPS)})")
            when.append((f, op, tuple(arg) if op == "in" else arg))
    sets: list[tuple[str, object]] = []
    for sig, val in dict(raw["set"]).items():
        if sig == "strategy" and isinstance(val, Mapping) and "among" in val:
            family = tuple(str(v) for v in val["among"])
            for v in family:
                coerce_signals({"strategy": v})
            if not family:
                raise ValueError(f"rule {name!r}: `among` needs at least one strategy")
            sets.append((sig, ("among", family)))
        elif isinstance(val, Mapping):
            src = val.get("mirror")
            if sig not in SCALAR_SIGNALS or src not in ("formality", "verbosity"):
                raise ValueError(f"rule {name!r}: only formality/verbosity can be mirrored into a scalar signal")
            sets.append((sig, ("mirror", src)))
        else:
            coerce_signals({sig: val})
            sets.append((sig, val))
    return Rule(name=name, when=tuple(when), set=tuple(sets), why=str(raw.get("why", "")))


def parse_rules(raw: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Rules as YAML gives them (a profile's own, or a file's), checked."""
    return tuple(_parse_rule(r) for r in raw)


def load_policy(path: str | Path | None = None) -> Policy:
    """Rules from a YAML file; the packaged `rules.yaml` when no path is given."""
    text = Path(path).read_text() if path else resources.files("persona").joinpath("rules.yaml").read_text()
    doc = yaml.safe_load(text)
    return Policy(rules=tuple(_parse_rule(r) for r in doc["rules"]))
