"""The Python client (persona_client, protocol-only) drives a full turn, an image and an override."""
from __future__ import annotations

import pytest

from persona_client import PersonaClient, ServerError
from tests.conftest import SHARED

pytestmark = pytest.mark.llm


async def test_python_client_full_turn(live_server):
    deltas: list[str] = []
    async with PersonaClient.connect(live_server.ws_url, profile="companion", face=True) as c:
        assert c.session_id and c.session["profile"] == "companion"
        await c.send_image((SHARED / "data" / "faces" / "img8.jpg").read_bytes())
        seen = await c.recv()
        assert seen["type"] == "perception" and seen["modality"] == "face"
        updated = await c.override(verbosity=0.0)
        assert updated["type"] == "controls.updated" and updated["overrides"] == {"verbosity": 0.0}
        reply = await c.ask("I just got back from a great trip!", on_delta=deltas.append)
        assert reply.text and "".join(deltas) == reply.text
        assert reply.persona is not None and set(reply.first("persona")["present"]) == {"text", "face"}
        assert reply.explanation is not None and "face" in reply.explanation["perceived"]
        assert reply.first("controls")["controls"]["verbosity"] == 0.0
        with pytest.raises(ServerError) as e:
            await c.ask("")  # empty messages are refused
        assert e.value.code == "invalid_message"
