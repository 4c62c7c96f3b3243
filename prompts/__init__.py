"""Prompt templates and agent profiles: ControlSignals → system prompt + sampling parameters."""
from prompts.render import AgentProfile, crisis_reply, Message, Prompt, Sampling, load_profiles, render, render_system, sampling_for

__all__ = ["AgentProfile", "crisis_reply", "Message", "Prompt", "Sampling", "load_profiles", "render", "render_system", "sampling_for"]
