"""Function tools (issue #45): what a client offers the model, the calls the model makes, and the results the client
sends back. Declared once here and used by every edge (the OpenAI route, the WebSocket, the realtime route) and by
the LLM client, which passes them to vLLM as OpenAI's `tools` / `tool_choice`.

A tool's output is the application's data, never an instruction: it reaches the model only as a quoted block
(`tool_results_block`), with anything shaped like a chat template's control token made inert, after the user's
message, and the system prompt says what the block is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prompts.quote import neutralize, unbracket

MAX_TOOLS = 32  # per request: more is refused with a message
MAX_OUTPUT_CHARS = 16_000  # one tool's output, as the model reads it (longer is cut, and says so)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: OpenAI's `{"type": "function", "function": {name, description, parameters}}`."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def openai(self) -> dict[str, Any]:
        fn: dict[str, Any] = {"name": self.name, "parameters": dict(self.parameters)}
        if self.description:
            fn["description"] = self.description
        return {"type": "function", "function": fn}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made: its id, the function's name and its arguments as JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the application answered to one call (`call_id`), as text."""

    call_id: str
    name: str
    output: str


@dataclass(frozen=True, slots=True)
class ToolUse:
    """The tools of one turn: those offered and how the model may use them ("auto", "none", "required", or the name
    of the one function it must call), and the results of calls already made (a continued turn)."""

    tools: tuple[Tool, ...] = ()
    choice: str = "auto"
    calls: tuple[ToolCall, ...] = ()  # the calls the results answer, in order
    results: tuple[ToolResult, ...] = ()

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        if len(names) > MAX_TOOLS:
            raise ValueError(f"at most {MAX_TOOLS} tools may be offered")
        if len(set(names)) != len(names):
            raise ValueError("tool names must be unique")
        if self.choice not in ("auto", "none", "required") and self.choice not in names:
            raise ValueError(f"tool_choice names a function that is not among the tools: {self.choice!r}")
        if self.choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs at least one tool")

    @property
    def offered(self) -> bool:
        """Whether the model is offered tools at all on this request."""
        return bool(self.tools) and self.choice != "none"

    def openai_choice(self) -> str | dict[str, Any]:
        if self.choice in ("auto", "none", "required"):
            return self.choice
        return {"type": "function", "function": {"name": self.choice}}


def tool_results_block(results: Sequence[ToolResult]) -> str:
    """The results as a delimited quote the model reads after the user's message: the tags cannot be forged from
    inside (angle brackets go) and nothing in an output becomes a control token."""
    parts = []
    for r in results:
        out = r.output if len(r.output) <= MAX_OUTPUT_CHARS else r.output[:MAX_OUTPUT_CHARS] + " [cut]"
        quoted = unbracket(neutralize(out))
        name = unbracket(neutralize(r.name)).replace('"', "'")
        parts.append(f'<tool_result name="{name}">\n{quoted}\n</tool_result>')
    return "<tool_results>\n" + "\n".join(parts) + "\n</tool_results>"


NO_TOOLS = ToolUse()  # a turn without tools
