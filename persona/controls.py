"""Typed control signals the policy hands to prompt rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

Strategy = Literal[
    "Question",
    "Restatement or Paraphrasing",
    "Reflection of feelings",
    "Self-disclosure",
    "Affirmation and Reassurance",
    "Providing Suggestions",
    "Information",
    "Others",
]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
SafetyMode = Literal[
    "normal", "caution", "safe", "crisis"
]  # safe: after a crisis, until released (persona/safemode.py)
SAFETY_MODES: tuple[str, ...] = get_args(SafetyMode)
SCALAR_SIGNALS = ("empathy", "warmth", "formality", "assertiveness", "verbosity", "pace")


@dataclass(frozen=True, slots=True)
class ControlSignals:
    """Scalars in [0, 1]: 0 = none / slow / casual / terse, 1 = most / fast / formal / elaborate."""

    empathy: float = 0.5
    warmth: float = 0.5
    formality: float = 0.5
    assertiveness: float = 0.5
    verbosity: float = 0.5
    pace: float = 0.5
    strategy: Strategy = "Question"
    safety_mode: SafetyMode = "normal"

    def __post_init__(self) -> None:
        for name in SCALAR_SIGNALS:
            v = getattr(self, name)
            assert 0.0 <= v <= 1.0, f"{name}={v} outside [0, 1]"
        assert self.strategy in STRATEGIES, f"unknown strategy {self.strategy!r}"
        assert self.safety_mode in SAFETY_MODES, f"unknown safety mode {self.safety_mode!r}"

    def with_values(self, values: Mapping[str, object]) -> ControlSignals:
        return replace(self, **coerce_signals(values))

    def rounded(self) -> ControlSignals:
        """The same signals to 3 decimals: what clients are shown."""
        return replace(self, **{name: round(getattr(self, name), 3) for name in SCALAR_SIGNALS})

    def as_dict(self) -> dict[str, object]:
        return {f.name: (round(v, 3) if isinstance(v := getattr(self, f.name), float) else v) for f in fields(self)}


def coerce_signals(values: Mapping[str, object]) -> dict[str, Any]:
    """Validate a partial mapping of signal name -> value (each then of its signal's type); raises ValueError naming
    what is wrong."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in SCALAR_SIGNALS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
            out[name] = float(value)
        elif name == "strategy":
            if value not in STRATEGIES:
                raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {value!r}")
            out[name] = value
        elif name == "safety_mode":
            if value not in SAFETY_MODES:
                raise ValueError(f"safety_mode must be one of {list(SAFETY_MODES)}, got {value!r}")
            out[name] = value
        else:
            raise ValueError(f"unknown control signal {name!r}")
    return out
