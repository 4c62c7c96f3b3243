"""Sticky safety: once a session reaches crisis it stays in a supportive safe mode until a de-escalation rule
releases it. Pure: the state in, the next state and what changed out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RELEASE_AFTER_CALM_TURNS = 3  # turns in a row with no risk answered in safe mode; the next calm one is normal again

Transition = Literal["entered", "released"]


@dataclass(frozen=True, slots=True)
class SafeMode:
    """active: the session is in safe mode. entered_turn: the user turn (1-based) that put it there. calm_turns: turns
    in a row since then with no risk at all (a caution or crisis turn starts the count again)."""

    active: bool = False
    entered_turn: int = 0
    calm_turns: int = 0

    def step(self, level: Literal["none", "caution", "crisis"], turn: int) -> tuple[SafeMode, Transition | None]:
        """The mode for user turn number `turn` whose message the safety layer read at `level`."""
        if level == "crisis":
            if self.active:
                return SafeMode(True, self.entered_turn, 0), None
            return SafeMode(True, turn, 0), "entered"
        if not self.active:
            return self, None
        calm = self.calm_turns + 1 if level == "none" else 0
        if calm > RELEASE_AFTER_CALM_TURNS:
            return SafeMode(), "released"
        return SafeMode(True, self.entered_turn, calm), None

    @property
    def why(self) -> str:
        return (f"The conversation reached a crisis at turn {self.entered_turn}: supportive safe mode (a strict safety "
                f"prompt, the output guard, resources repeated) until {RELEASE_AFTER_CALM_TURNS} calm turns in a row "
                f"({self.calm_turns} so far).")

    def as_dict(self) -> dict[str, object]:
        return {"active": self.active, "entered_turn": self.entered_turn, "calm_turns": self.calm_turns,
                "release_after": RELEASE_AFTER_CALM_TURNS}
