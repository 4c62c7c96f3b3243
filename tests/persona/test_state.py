from __future__ import annotations

import numpy as np

from fusion import FusedPercept
from perception import LABELS
from persona import PersonaState, PersonaTracker, read_style


def percept(label: str, p: float = 0.9) -> FusedPercept:
    d = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), dtype=np.float32)
    d[LABELS.index(label)] = p
    return FusedPercept(
        distribution=d, gates={"text": 1.0, "voice": 0.0, "face": 0.0}, present=("text",), model="test", latency_ms=0.0
    )


def test_first_turn_takes_the_percept_and_later_turns_blend():
    tr = PersonaTracker(turn_weight=0.5)
    s = tr.update(PersonaState.initial(0), percept("joy"), read_style("great!"), 1.0, 0.0)
    assert s.dominant_emotion == "joy" and s.valence > 0.5 and s.turns == 1 and s.trend == "steady"
    s2 = tr.update(s, percept("sadness"), read_style("oh no"), 1.0, 1.0)
    assert s2.valence < s.valence and s2.trend == "falling"
    assert (
        abs(s2.distribution[LABELS.index("joy")] - (0.5 * s.distribution[LABELS.index("joy")] + 0.5 * 0.1 / 6)) < 1e-3
    )
    s3 = tr.update(s2, percept("joy"), read_style("yay"), 1.0, 2.0)
    assert s3.trend == "rising"


def test_low_confidence_moves_the_state_less():
    tr = PersonaTracker(turn_weight=0.6)
    s = tr.update(PersonaState.initial(0), percept("joy"), read_style("hi"), 1.0, 0.0)
    sure = tr.update(s, percept("anger"), read_style("no"), 1.0, 1.0)
    unsure = tr.update(s, percept("anger"), read_style("no"), 0.2, 1.0)
    assert sure.distribution[LABELS.index("anger")] > unsure.distribution[LABELS.index("anger")]


def test_idle_time_decays_toward_neutral():
    tr = PersonaTracker(half_life_s=100.0)
    s = tr.update(PersonaState.initial(0), percept("anger"), read_style("argh"), 1.0, 0.0)
    later = tr.decay(s, 100.0)
    assert abs(later.distribution[LABELS.index("anger")] - 0.5 * s.distribution[LABELS.index("anger")]) < 1e-4
    assert later.valence > s.valence and later.confidence == 0.5 * s.confidence
    much_later = tr.decay(s, 10_000.0)
    assert much_later.distribution[LABELS.index("neutral")] > 0.99


def test_stress_rises_with_negative_aroused_states():
    tr = PersonaTracker()
    calm = tr.update(PersonaState.initial(0), percept("neutral"), read_style("ok"), 1.0, 0.0)
    scared = tr.update(PersonaState.initial(0), percept("fear"), read_style("help"), 1.0, 0.0)
    assert scared.stress > 0.6 > 0.05 > calm.stress


def test_style_reads_formality_and_verbosity():
    formal = read_style("Dear team, could you kindly assist me regarding my request? Regards.")
    casual = read_style("lol idk tbh, gonna skip it :)")
    assert formal.formality > 0.7 and casual.formality < 0.2
    assert read_style("ok").verbosity == 0.0
    assert read_style(" ".join(["word"] * 80)).verbosity == 1.0
