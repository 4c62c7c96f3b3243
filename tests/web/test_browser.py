"""End-to-end in headless Debian Chromium driven by Playwright: the demo page (typed turn; then microphone and
camera fed by Chromium's fake devices from an espeak-ng sentence and a video of FER-2013 validation faces) and the
widget embedded in a plain page on another origin. Screenshots go to tests/artifacts/screens/."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from perception.face.detect import load_face_detector
from tests.audio import espeak, silence
from tests.conftest import ARTIFACTS, SHARED, THIRD_PARTY_PORT
from tests.web.chromium import launch, third_party_site, widget_turn

pytestmark = pytest.mark.llm
SCREENS = ARTIFACTS / "screens"


def _demo_page(pw, url: str, wav: Path, y4m: Path | None = None, boxes: tuple[str, ...] = ("#consent-voice",)):
    """Chromium with its fake microphone (and camera) playing these files, on the demo page, connected with `boxes`
    checked. (browser, page)"""
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if y4m is not None:
        args.append(f"--use-file-for-fake-video-capture={y4m}")
    browser = launch(pw, args)
    page = browser.new_context(permissions=["microphone"] + (["camera"] if y4m is not None else [])).new_page()
    page.goto(url + "/")
    for box in boxes:
        page.check(box)
    page.click("#connect")
    return browser, page


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright

    SCREENS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        yield p


def test_demo_page_typed_turn_streams_a_reply(live_server, pw):
    browser = launch(pw)
    page = browser.new_page()
    page.goto(live_server.url + "/")
    page.click("#connect")
    page.wait_for_selector("#status[data-state=online]", timeout=30_000)
    page.fill("#text", "I just passed my driving test!")
    page.click("#send button")
    page.wait_for_selector("#log li.assistant[data-done=response\\.done]", timeout=120_000)
    reply = page.inner_text("#log li.assistant")
    assert reply.strip()
    assert page.inner_text(".modality[data-m=text]").lower().startswith("text")
    assert "text" in page.inner_text("#gates") and page.inner_text("#why").startswith("This turn")
    page.screenshot(path=str(SCREENS / "demo-typed-turn.png"), full_page=True)
    browser.close()


def face_video(path: Path, seconds: int = 20) -> None:
    """A 640x480 Y4M at 10 fps cycling through FER-2013 validation 'happy' faces the detector finds."""
    with np.load(SHARED / "data" / "fer2013" / "fer2013_public_test.npz") as z:
        happy = z["images"][z["labels"] == 3]
    det, frames = load_face_detector(), []
    for f in happy:
        big = cv2.copyMakeBorder(
            cv2.resize(f, (220, 220), interpolation=cv2.INTER_CUBIC), 50, 50, 50, 50, cv2.BORDER_REPLICATE
        )
        frame = np.full((480, 640), 120, np.uint8)
        frame[80:400, 160:480] = big
        if det.detect(frame):
            frames.append(frame)
        if len(frames) == 5:
            break
    with open(path, "wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        chroma = np.full((240, 320), 128, np.uint8).tobytes()
        for i in range(seconds * 10):
            out.write(b"FRAME\n" + frames[(i // 10) % len(frames)].tobytes() + chroma + chroma)


def test_demo_page_microphone_and_camera(live_server, pw, tmp_path):
    wav, y4m = tmp_path / "speech.wav", tmp_path / "faces.y4m"
    speech = np.concatenate([silence(1.0), espeak("I am really happy to see you today."), silence(6.0)])
    sf.write(wav, speech, 16000, subtype="PCM_16")
    face_video(y4m)
    browser, page = _demo_page(pw, live_server.url, wav, y4m, boxes=("#consent-voice", "#consent-face"))
    page.wait_for_selector(".modality[data-m=face]", timeout=60_000)
    face = page.inner_text(".modality[data-m=face]")
    page.wait_for_function(
        "document.querySelector('#transcript').textContent.startsWith('heard: ') && "
        "document.querySelector('#transcript').textContent.length > 12",
        timeout=120_000,
    )
    heard = page.inner_text("#transcript").lower()
    page.wait_for_selector("#log li.assistant[data-done]", timeout=120_000)
    page.screenshot(path=str(SCREENS / "demo-mic-camera.png"), full_page=True)
    assert "happy" in heard or "see you" in heard, heard
    assert face.lower().startswith("face") and "joy" in face, face
    assert page.inner_text("#log li.assistant").strip()
    browser.close()


def test_demo_page_speaks_the_reply_to_a_spoken_turn(live_server, pw, tmp_path):
    """Fake microphone in, the reply's audio out through Web Audio: the page plays it as it arrives."""
    wav = tmp_path / "ask.wav"
    speech = np.concatenate([silence(1.0), espeak("Can you tell me something kind about the sea?"), silence(30.0)])
    sf.write(wav, speech, 16000, subtype="PCM_16")
    browser, page = _demo_page(pw, live_server.url, wav, boxes=("#consent-voice", "#voice-reply"))
    page.wait_for_selector("#speaker[data-state=speaking]", timeout=180_000)
    page.wait_for_function("window.replyPlayer && window.replyPlayer.playedMs() > 1000", timeout=60_000)
    page.screenshot(path=str(SCREENS / "demo-spoken-reply.png"), full_page=True)
    played = page.evaluate("window.replyPlayer.playedMs()")
    assert played > 1000 and "sea" in page.inner_text("#log li.user").lower()
    browser.close()


def test_widget_on_a_third_party_page(live_server, pw, tmp_path):
    host = live_server.url.removeprefix("http://")
    (tmp_path / "index.html").write_text(f"""<!doctype html><html><head><title>Acme support</title></head><body>
<h1>Acme Inc. — help centre</h1><p>Questions? Ask our assistant.</p>
<script type="module" src="http://{host}/static/widget.js"></script>
<persona-chat endpoint="ws://{host}/v1/chat" profile="support_agent"></persona-chat>
</body></html>""")
    with third_party_site(tmp_path, THIRD_PARTY_PORT) as url:
        browser = launch(pw)
        page = browser.new_page()
        widget_turn(page, url, "My order has not arrived yet.")
        assert page.inner_text("persona-chat li.user") == "My order has not arrived yet."
        assert page.inner_text("persona-chat li.assistant").strip()
        assert "reading you as" in page.inner_text("persona-chat .mood")
        page.screenshot(path=str(SCREENS / "widget-third-party.png"), full_page=True)
        browser.close()
