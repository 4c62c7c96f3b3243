"""Camera frames over the real WebSocket and REST: a smiling photo reads as joy, joins the turn's fusion; bad frames
get an error event and the session goes on; the frame limit answers every frame."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import SHARED
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm
FACES = SHARED / "data" / "faces"
EXE = str(Path(sys.executable).with_name("persona-agent"))


def frame(name: str, side: int = 640) -> str:
    """A photo from shared/data/faces, scaled like a webcam frame, as base64 JPEG."""
    img = cv2.imread(str(FACES / name))
    s = side / max(img.shape[:2])
    ok, buf = cv2.imencode(".jpg", cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA))
    return base64.b64encode(buf.tobytes()).decode()


async def test_smiling_frame_reads_joy_and_joins_the_turn(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(consent={"face": True})
    await ws.send({"type": "user.image", "image": frame("img1.jpg"), "explain": True})
    ev = await ws.recv()
    assert ev["type"] == "perception" and ev["modality"] == "face", ev
    assert ev["top"] == "joy", ev["emotions"]
    assert ev["evidence"]["faces"] == 1 and len(ev["evidence"]["box"]) == 4
    grid = ev["evidence"]["saliency"]["grid"]
    assert len(grid) == 6 and all(len(r) == 6 for r in grid)
    events = await ws.turn("Guess what, I just got the job!")
    persona = next(e for e in events if e["type"] == "persona")
    assert set(persona["present"]) == {"text", "face"}
    assert abs(sum(persona["gates"].values()) - 1) < 1e-3 and persona["gates"]["face"] > 0
    done = events[-1]
    assert done["type"] == "response.done" and "face" in done["explanation"]["perceived"]
    await ws.close()


async def test_blank_frame_has_no_face(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(consent={"face": True})
    ok, buf = cv2.imencode(".png", np.full((480, 640, 3), 90, np.uint8))
    await ws.send({"type": "user.image", "image": base64.b64encode(buf.tobytes()).decode()})
    ev = await ws.recv()
    assert ev["type"] == "face.absent", ev
    events = await ws.turn("hello")
    assert next(e for e in events if e["type"] == "persona")["present"] == ["text"]
    await ws.close()


async def test_bad_frames_get_errors_and_the_session_goes_on(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start()
    await ws.send({"type": "user.image", "image": frame("img5.jpg")})
    assert (await ws.recv())["code"] == "consent_required"
    await ws.close()

    ws = await WS.connect(live_server.ws_url)
    await ws.start(consent={"face": True})
    good = base64.b64decode(frame("img5.jpg"))
    cases = {
        "unsupported_image": base64.b64encode(b"GIF89a but really just text").decode(),
        "invalid_image": base64.b64encode(good[:300] + bytes(2000)).decode(),  # corrupt JPEG body
        "image_too_large": base64.b64encode(b"\xff\xd8\xff" + bytes(4 * 1024 * 1024)).decode(),  # 4 MB + 3 bytes
    }
    for code, payload in cases.items():
        await asyncio.sleep(0.5)  # stay under the frame-rate limit: this test is about content
        await ws.send({"type": "user.image", "image": payload})
        ev = await ws.recv()
        assert ev["type"] == "error" and ev["code"] == code, (code, ev)
    await ws.send({"type": "user.image", "image": "%%% not base64 %%%"})
    assert (await ws.recv())["code"] == "invalid_image"
    await ws.send(json.dumps({"type": "user.image"}))
    assert (await ws.recv())["code"] == "invalid_message"
    huge = json.dumps({"type": "user.image", "image": "A" * (6 * 1024 * 1024)})
    await ws.send(huge)
    assert (await ws.recv())["code"] == "message_too_large"
    events = await ws.turn("Still there?")
    assert events[-1]["type"] == "response.done"
    await ws.close()


async def test_frame_rate_limit_answers_every_frame(live_server):
    ws = await WS.connect(live_server.ws_url)
    await ws.start(consent={"face": True})
    img = frame("img10.jpg", side=320)
    for _ in range(8):
        await ws.send({"type": "user.image", "image": img})
    got = [await ws.recv(timeout=60) for _ in range(8)]
    kinds = [e["type"] if e["type"] != "error" else e["code"] for e in got]
    assert kinds.count("image_rate_limited") >= 1 and kinds.count("perception") >= 2, kinds
    assert set(kinds) <= {"perception", "image_rate_limited"}
    await ws.close()


def test_rest_analyze_face(live_server):
    url = f"{live_server.url}/v1/analyze/face"
    r = httpx.post(url, content=(FACES / "selfie-many-people.jpg").read_bytes(), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["faces"]) >= 4 and body["width"] == 600
    assert all(abs(sum(f["emotions"].values()) - 1) < 1e-3 for f in body["faces"])
    ok, crop = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))
    r = httpx.post(url, params={"crop": "true"}, content=crop.tobytes(), timeout=60)
    assert r.status_code == 200 and r.json()["faces"][0]["box"] == [0, 0, 48, 48]
    r = httpx.post(url, content=b"not an image", timeout=30)
    assert r.status_code == 422 and "unsupported_image" in r.json()["detail"]
    r = httpx.post(url, content=b"\xff\xd8\xff" + bytes(4 * 1024 * 1024 + 10), timeout=30)
    assert r.status_code == 413


def test_cli_analyze_face(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    out = tmp_path / "faces.jsonl"
    p = subprocess.run(
        [EXE, "analyze", "face", str(FACES), str(tmp_path / "broken.jpg"), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2 and "broken.jpg" in p.stderr  # one unreadable image: its own error line, exit code 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 13
    by_name = {Path(x["path"]).name: x for x in lines}
    assert len(by_name["selfie-many-people.jpg"]["faces"]) >= 4 and len(by_name["couple.jpg"]["faces"]) == 2
    assert by_name["broken.jpg"]["error"]["code"] == "invalid_image"
    smile = by_name["img1.jpg"]["faces"][0]["emotions"]
    assert max(smile, key=smile.get) == "joy"
    # --crops: each image is one face crop, box = the whole image
    ok, crop = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))
    (tmp_path / "c.png").write_bytes(crop.tobytes())
    p = subprocess.run(
        [EXE, "analyze", "face", "--crops", "--explain", str(tmp_path / "c.png")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = json.loads(p.stdout)
    assert p.returncode == 0 and line["faces"][0]["box"] == [0, 0, 48, 48] and "saliency" in line["faces"][0]
