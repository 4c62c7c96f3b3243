"""Prompt templates and agent profiles: ControlSignals → system prompt + sampling parameters."""

from prompts.render import (
    AgentProfile,
    ControlsAt,
    Message,
    Prompt,
    Sampling,
    crisis_reply,
    fit_context,
    load_profiles,
    points_to_support,
    render,
    render_system,
    safety_resources,
    sampling_for,
    support_note,
    token_bound,
)

__all__ = [
    "AgentProfile",
    "ControlsAt",
    "crisis_reply",
    "fit_context",
    "token_bound",
    "safety_resources",
    "Message",
    "Prompt",
    "Sampling",
    "load_profiles",
    "render",
    "render_system",
    "sampling_for",
    "points_to_support",
    "support_note",
]
