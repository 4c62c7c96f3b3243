"""Render an agent profile + control signals + memory into chat messages and sampling parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import jinja2
import yaml

from persona import STRATEGIES, ControlSignals, OverrideLimits, Rule, parse_rules
from prompts.quote import neutralize, unbracket
from prompts.tools import NO_TOOLS, ToolUse, tool_results_block

Role = Literal["system", "user", "assistant"]
# Where the guidance (the "How to answer this message" block the controls render to) goes: in the system message at
# the top, or in a second system message after the user's message, next to where the reply starts. A small model
# follows the late block far better; some chat templates (Mistral's) take a system message only at the top.
ControlsAt = Literal["system", "end"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    interrupted: bool = False  # an assistant reply the user cut short; the LLM is told so

    def for_llm(self) -> Message:
        if self.interrupted:
            return Message(self.role, f"{self.content} [the user interrupted this reply]")
        return self


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float
    max_tokens: int
    presence_penalty: float
    extra: Mapping[str, float] = field(default_factory=dict)  # vLLM-only parameters, sent as extra_body

    def as_dict(self) -> dict[str, int | float]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "presence_penalty": self.presence_penalty,
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: tuple[Message, ...]
    sampling: Sampling
    tools: ToolUse = NO_TOOLS  # the functions the model is offered on this request, and how it may use them


@dataclass(frozen=True, slots=True)
class AgentProfile:
    id: str
    name: str
    persona: str
    base: ControlSignals
    limits: OverrideLimits
    safety_locale: str = "default"  # which crisis resources (prompts/safety.yaml) to give by default
    # the strategies that fit this agent (the learned chooser picks among them), and its own instruction for any
    # whose shared one (prompts/strategies.yaml) does not fit it
    strategies: tuple[str, ...] = STRATEGIES
    strategy_text: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()  # its own policy rules, after the shared persona/rules.yaml


@cache
def _env() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(resources.files("prompts").joinpath("templates")))
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True, autoescape=False)


@cache
def _yaml(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(resources.files("prompts").joinpath(name).read_text())
    return spec


def load_profiles() -> dict[str, AgentProfile]:
    """The packaged profiles (prompts/profiles/*.yaml), by id."""
    out: dict[str, AgentProfile] = {}
    for entry in resources.files("prompts").joinpath("profiles").iterdir():
        if not entry.name.endswith(".yaml"):
            continue
        raw = yaml.safe_load(entry.read_text())
        lim = raw.get("override_limits") or {}
        out[raw["id"]] = AgentProfile(
            id=raw["id"],
            name=raw["name"],
            persona=raw["persona"].strip(),
            base=ControlSignals().with_values(raw.get("base") or {}),
            limits=OverrideLimits(
                ranges={k: (float(v[0]), float(v[1])) for k, v in (lim.get("ranges") or {}).items()},
                strategies=bool(lim.get("strategies", True)),
            ),
            safety_locale=str(raw.get("safety_locale", "default")),
            **_strategies(raw),
        )
    return out


def _strategies(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A profile's `strategies` (those that fit it), `strategy_text` and `rules`, checked."""
    allowed = tuple(raw.get("strategies") or STRATEGIES)
    texts = {str(k): str(v).strip() for k, v in (raw.get("strategy_text") or {}).items()}
    unknown = (set(allowed) | set(texts)) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"profile {raw['id']!r}: unknown strategies {sorted(unknown)}")
    rules = parse_rules(raw.get("rules") or [])
    for rule in rules:
        for sig, value in rule.set:
            if sig == "strategy" and value not in allowed:
                raise ValueError(f"profile {raw['id']!r}: rule {rule.name!r} sets {value!r}, not one of its strategies")
    return {"strategies": allowed, "strategy_text": texts, "rules": rules}


def sampling_for(
    controls: ControlSignals, max_tokens_cap: int | None = None, temperature: float | None = None
) -> Sampling:
    spec = _yaml("sampling.yaml")

    def lerp(key: str) -> float:
        s = spec[key]
        x = float(getattr(controls, s["signal"]))
        return float(s["lo"] + (s["hi"] - s["lo"]) * x)

    max_tokens = int(round(lerp("max_tokens")))
    if max_tokens_cap is not None:
        max_tokens = min(max_tokens, max_tokens_cap)
    return Sampling(
        temperature=round(lerp("temperature") if temperature is None else temperature, 3),
        max_tokens=max_tokens,
        presence_penalty=round(lerp("presence_penalty"), 3),
        extra=dict(spec.get("extra") or {}),
    )


def target_words(verbosity: float) -> int:
    """The reply length the prompt asks for (sampling.yaml `length_words`), geometric in verbosity."""
    spec = _yaml("sampling.yaml")["length_words"]
    return int(round(spec["lo"] * (spec["hi"] / spec["lo"]) ** verbosity))


def render_system(
    profile: AgentProfile,
    controls: ControlSignals,
    has_earlier: bool = False,
    template: str = "system.j2",
    has_tool_results: bool = False,
) -> str:
    """The system message: the profile and the controls, from templates only. No user text ever reaches it.
    `guidance.j2` is the controls' part alone (the "How to answer this message" block)."""
    strategy_hint = profile.strategy_text.get(controls.strategy) or _yaml("strategies.yaml")[controls.strategy]
    text = (
        _env()
        .get_template(template)
        .render(
            profile=profile,
            controls=controls,
            strategy_hint=strategy_hint,
            has_earlier=has_earlier,
            has_tool_results=has_tool_results,
            words=target_words(controls.verbosity),
        )
    )
    return text.strip()


def earlier_block(summary: str) -> str:
    """What left the window, as a delimited quote (the tags cannot be forged from inside: angle brackets go)."""
    return f"<earlier_conversation>\n{unbracket(summary)}\n</earlier_conversation>"


def render(
    profile: AgentProfile,
    controls: ControlSignals,
    history: Sequence[Message],
    user_text: str,
    *,
    summary: str = "",
    max_tokens_cap: int | None = None,
    temperature: float | None = None,
    controls_at: ControlsAt = "system",
    tools: ToolUse = NO_TOOLS,
) -> Prompt:
    """User text goes only into user messages: nothing in it can reach the controls or the system prompt. The
    summary of earlier turns is quoted data at the head of the first user message, never part of the system.
    With controls_at="end" the system message is the profile alone and the guidance follows the user's message as a
    second system message (still rendered from templates only). The results of tools already called (a continued
    turn) are quoted data after the user's message, like the summary."""
    results = bool(tools.results)
    if controls_at == "end":
        system = Message("system", profile.persona.strip())
        guidance: tuple[Message, ...] = (
            Message(
                "system",
                render_system(profile, controls, bool(summary), template="guidance.j2", has_tool_results=results),
            ),
        )
    else:
        system = Message("system", render_system(profile, controls, bool(summary), has_tool_results=results))
        guidance = ()
    # Nothing a user typed (nor history a client sent, nor a summary of it, nor a tool's output) reaches the engine
    # as a control token.
    said = neutralize(user_text) + (f"\n\n{tool_results_block(tools.results)}" if results else "")
    turns = [Message(m.role, neutralize(m.content), m.interrupted).for_llm() for m in history] + [Message("user", said)]
    if summary:
        block = earlier_block(summary)
        if turns[0].role == "user":
            turns[0] = Message("user", f"{block}\n\n{turns[0].content}")
        else:
            turns.insert(0, Message("user", block))
    return Prompt(
        messages=(system, *turns, *guidance),
        sampling=sampling_for(controls, max_tokens_cap, temperature),
        tools=tools,
    )


MESSAGE_OVERHEAD_TOKENS = 8  # the chat template's markers around each message


def token_bound(messages: Sequence[Message]) -> int:
    """An upper bound on the messages' length in tokens: byte-level BPE never makes more tokens than UTF-8 bytes."""
    return sum(len(m.content.encode()) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def fit_context(prompt: Prompt, budget: int, count: int) -> Prompt | None:
    """One step towards a prompt of at most `budget` tokens, given that it counts `count` (exact or a bound): the
    oldest turn after the system message goes first; with none left, the user's message is cut to its beginning in
    proportion. None when nothing can be dropped or cut any more."""
    msgs = list(prompt.messages)
    last_user = max(i for i, m in enumerate(msgs) if m.role == "user")
    if last_user > 1:
        del msgs[1]
        return Prompt(tuple(msgs), prompt.sampling, prompt.tools)
    text = msgs[last_user].content
    keep = int(len(text) * max(0.0, 1 - (count - budget) / max(count, 1)) * 0.95)
    if keep <= 0 or keep >= len(text):
        return None
    msgs[last_user] = Message("user", text[:keep] + " …")
    return Prompt(tuple(msgs), prompt.sampling, prompt.tools)


def _safety_entry(locale: str | None) -> dict[str, Any]:
    """A locale's entry in prompts/safety.yaml, `default` when the locale has none."""
    spec = _yaml("safety.yaml")
    entry: dict[str, Any] = spec.get(locale or "default") or spec["default"]
    return entry


def safety_resources(locale: str | None) -> str:
    """The crisis resources of a locale (prompts/safety.yaml), one sentence or two: repeated in safe mode."""
    return " ".join(_safety_entry(locale)["resources"].split())


def support_note(locale: str | None) -> str:
    """The gentle pointer to support added to a caution reply that has none (prompts/safety.yaml `support_note`)."""
    note = _safety_entry(locale).get("support_note") or _safety_entry(None)["support_note"]
    return " ".join(note.split())


# What counts as pointing to support in a caution reply: a person to talk to, a professional, a helpline.
_SUPPORT_RE = re.compile(
    r"\b(someone|somebody|a (friend|person|family member|loved one))\s+(you\s+)?(trust|are close to|can talk to)\b"
    r"|\b(talk|talking|speak|speaking|reach(ing)? out)\s+(to|with)\s+(someone|somebody|a friend|friends|family|"
    r"a (doctor|professional|counsel+or|therapist|gp))\b"
    r"|\b(professional|counsel+or|counsel+ing|therapist|therapy|helpline|hotline|crisis line|support line)\b",
    re.I,
)


def points_to_support(text: str) -> bool:
    return _SUPPORT_RE.search(text) is not None


def crisis_reply(locale: str | None) -> str:
    """The fixed, reviewed safety reply for a locale (prompts/safety.yaml), `default` when the locale has none."""
    entry = _safety_entry(locale)
    return " ".join(entry["reply"].split()).format(resources=safety_resources(locale))
