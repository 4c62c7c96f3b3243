from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.events import ResponseDelta
from server.protocol import MAX_TEXT_CHARS, AudioFrame, ProtocolError, UserText, json_schema, parse_client, to_wire


def test_binary_frames_are_pcm_audio():
    assert parse_client(b"\x01\x00\x02\x00") == AudioFrame(b"\x01\x00\x02\x00")


def test_parse_valid_user_text():
    ev = parse_client(json.dumps({"type": "user.text", "text": "hello"}))
    assert isinstance(ev, UserText) and ev.text == "hello"


@pytest.mark.parametrize(
    "raw, code",
    [
        ("", "invalid_json"),
        ("nul\x00", "invalid_json"),
        ("[" * 100_000, "message_too_large"),  # over 64 KB and not a user.image: refused before it is parsed (#40)
        (
            '{"type": "user.image", "image": "' + "A" * 100_000 + '", "x": 1}',
            "invalid_message",
        ),  # a large image is parsed
        (
            '{"type": "user.text", "text": "' + "a" * 100_000 + '"}',
            "message_too_large",
        ),  # over 64 KB: only images may be
        ("[" * 6_000_000, "message_too_large"),  # over the user.image limit: refused before parsing
        ("[" * 5000 + "]" * 5000, "invalid_json"),  # nesting deeper than the parser allows
        ("42", "invalid_message"),
        ('{"type": 7}', "invalid_message"),
        ('{"type": "user.text", "text": "hi", "extra": 1}', "invalid_message"),
        ('{"type": "user.text", "text": "' + "x" * (MAX_TEXT_CHARS + 1) + '"}', "text_too_long"),
        ('{"type": "USER.TEXT", "text": "hi"}', "unknown_type"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "invalid_audio"),  # a WAV file is not a PCM frame
        (b"\x00" * 64_002, "audio_frame_too_large"),
    ],
)
def test_parse_errors_have_codes(raw, code):
    with pytest.raises(ProtocolError) as info:
        parse_client(raw)
    assert info.value.code == code and info.value.message


def test_outgoing_events_validate_against_schema():
    assert json.loads(to_wire(ResponseDelta(response_id="r1", text="hi"))) == {
        "type": "response.delta",
        "response_id": "r1",
        "text": "hi",
    }


def test_committed_schema_is_current():
    committed = json.loads((Path(__file__).parents[2] / "server" / "protocol.schema.json").read_text())
    assert committed == json.loads(json.dumps(json_schema())), "run `make schema` and commit the result"
