"""Protocol fuzzing with hypothesis: 10,000+ generated frames through the parser (every one either parses to a
typed event or is refused with a known code, nothing else escapes), then generated frames over a real WebSocket to
the live server (every one answered by a valid event, the session alive after)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.protocol import (
    _SERVER,
    CLIENT_TYPES,
    AudioFrame,
    ProtocolError,
    UserAudio,
    UserImage,
    UserText,
    parse_client,
)
from tests.server.wsutil import WS

CODES = {
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "message_too_large",
    "text_too_long",
    "audio_frame_too_large",
    "invalid_audio",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(
    [
        "text",
        "explain",
        "profile",
        "user_id",
        "resume",
        "consent",
        "locale",
        "audio",
        "sample_rate",
        "format",
        "image",
        "controls",
        "voice",
        "face",
        "x",
    ]
)
events = st.builds(
    lambda t, extra: json.dumps({"type": t, **extra}),
    st.sampled_from(CLIENT_TYPES + ("user.txt", "", "session", "response.cancel ")),
    st.dictionaries(fields, json_values, max_size=4),
)
frames = st.one_of(
    events,
    st.text(max_size=200),
    st.binary(max_size=300),
    json_values.map(json.dumps),
    st.builds(lambda b: b"RIFF" + b, st.binary(max_size=64)),
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_parser_never_crashes(raw):
    try:
        msg = parse_client(raw)
    except ProtocolError as exc:
        assert exc.code in CODES, exc.code
        return
    assert type(msg).__name__ in {
        "SessionStart",
        "UserText",
        "UserAudio",
        "UserAudioEnd",
        "UserImage",
        "ResponseCancel",
        "ControlsOverride",
        "AudioFrame",
    }


def _expensive(raw) -> bool:
    """Frames that would start a reply or run a model: the parser test covers them; here they would only be slow."""
    try:
        return isinstance(parse_client(raw), (UserText, UserAudio, UserImage, AudioFrame))
    except ProtocolError:
        return False


@pytest.mark.llm
async def test_websocket_answers_every_fuzzed_frame(live_server):
    cases = []

    @settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(frames)
    def collect(raw):
        if not _expensive(raw):
            cases.append(raw)

    collect()
    ws = await WS.connect(live_server.ws_url)
    await ws.start(consent={"voice": False})
    answered = 0
    for raw in cases:
        await ws.send(raw)
        ev = await ws.recv(timeout=30)
        _SERVER.validate_python(ev)  # a valid server event
        answered += 1
    events = await ws.turn("Still with me after all that?")
    assert events[-1]["type"] == "response.done"
    await ws.close()
    print(f"{answered} fuzzed frames, {answered} answered with valid events")
    assert answered == len(cases) >= 1000
