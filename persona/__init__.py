"""Persona tracking over a conversation and the policy mapping it to control signals."""

from persona.chooser import TAIL, StrategyChoice, StrategyChooser, chooser_features, load_strategy_chooser
from persona.controls import SAFETY_MODES, SCALAR_SIGNALS, STRATEGIES, ControlSignals, coerce_signals
from persona.message import MESSAGE_KINDS, MessageKind, Moment, message_kind, tells_news
from persona.policy import (
    Decision,
    OverrideLimits,
    Policy,
    RiskInput,
    Rule,
    RuleFiring,
    apply_overrides,
    load_policy,
    parse_rules,
)
from persona.safemode import RELEASE_AFTER_CALM_TURNS, SafeMode
from persona.state import PersonaState, PersonaTracker, PersonaView
from persona.style import Style, read_style

__all__ = [
    "MESSAGE_KINDS",
    "TAIL",
    "MessageKind",
    "Moment",
    "Rule",
    "StrategyChoice",
    "StrategyChooser",
    "chooser_features",
    "load_strategy_chooser",
    "message_kind",
    "parse_rules",
    "tells_news",
    "SAFETY_MODES",
    "SCALAR_SIGNALS",
    "STRATEGIES",
    "ControlSignals",
    "Decision",
    "OverrideLimits",
    "PersonaState",
    "PersonaView",
    "PersonaTracker",
    "Policy",
    "RELEASE_AFTER_CALM_TURNS",
    "SafeMode",
    "RiskInput",
    "RuleFiring",
    "Style",
    "apply_overrides",
    "coerce_signals",
    "load_policy",
    "read_style",
]
