"""Persona tracking over a conversation and the policy mapping it to control signals."""

from persona.controls import SAFETY_MODES, SCALAR_SIGNALS, STRATEGIES, ControlSignals, coerce_signals
from persona.policy import Decision, OverrideLimits, Policy, RiskInput, RuleFiring, apply_overrides, load_policy
from persona.safemode import RELEASE_AFTER_CALM_TURNS, SafeMode
from persona.state import PersonaState, PersonaTracker, PersonaView
from persona.style import Style, read_style

__all__ = [
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
