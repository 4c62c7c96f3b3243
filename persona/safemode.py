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
    in a row since then with no risk at all (a caution or crisis turn starts the count again). caution_turn: the last
    user turn read at caution; carried: this turn, read as none, directly follows it, so it is answered under the
    careful prompt too (the conversation so far, not only the last message: "I don't see the point anymore" then
    "anyway, whatever" is not a fresh start)."""

    active: bool = False
    entered_turn: int = 0
    calm_turns: int = 0
    caution_turn: int = 0
    carried: bool = False

    def step(self, level: Literal["none", "caution", "crisis"], turn: int) -> tuple[SafeMode, Transition | None]:
        """The mode for user turn number `turn` whose message the safety layer read at `level`."""
        caution = turn if level == "caution" else self.caution_turn
        carried = level == "none" and self.caution_turn > 0 and self.caution_turn == turn - 1
        if level == "crisis":
            if self.active:
                return SafeMode(True, self.entered_turn, 0, caution), None
            return SafeMode(True, turn, 0, caution), "entered"
        if not self.active:
            return SafeMode(False, 0, 0, caution, carried), None
        calm = self.calm_turns + 1 if level == "none" else 0
        if calm > RELEASE_AFTER_CALM_TURNS:
            return SafeMode(caution_turn=caution, carried=carried), "released"
        return SafeMode(True, self.entered_turn, calm, caution, carried), None

    @property
    def why(self) -> str:
        return (
            f"The conversation reached a crisis at turn {self.entered_turn}: supportive safe mode (a strict safety "
            f"prompt, the output guard, resources repeated) until {RELEASE_AFTER_CALM_TURNS} calm turns in a row "
            f"({self.calm_turns} so far)."
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "active": self.active,
            "entered_turn": self.entered_turn,
            "calm_turns": self.calm_turns,
            "release_after": RELEASE_AFTER_CALM_TURNS,
            "caution_turn": self.caution_turn,
            "carried": self.carried,
        }
