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


def test_the_client_builds_as_its_own_package_with_no_backend_dependency(tmp_path):
    """clients/python builds a wheel holding only persona_client, requiring only websockets; imported from that
    wheel, it pulls in no backend module."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(root / "clients" / "python"),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("persona_agent_client-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert [n for n in names if not n.startswith("persona_agent_client-")] == [
        "persona_client/__init__.py",
        "persona_client/tokens.py",
    ]
    assert [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist")] == ["Requires-Dist: websockets>=13"]
    backend = ("agent", "server", "perception", "fusion", "persona", "prompts", "training", "tuning", "cli", "harness")
    probe = (
        f"import sys; sys.path.insert(0, {str(wheel)!r}); import persona_client; "
        f"assert persona_client.__file__.startswith({str(wheel)!r}), persona_client.__file__; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {backend!r}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
