"""The Pipecat processor in a real Pipecat pipeline (pipecat-ai's own test pipeline and worker runner) against the
live server and its real embedded vLLM: a user transcription in, the reply out as LLM text frames with our
perception, persona, controls and safety as frames; a crisis transcription gets the fixed reply and a safety frame."""

from __future__ import annotations

import numpy as np
import pytest

pipecat = pytest.importorskip("pipecat")  # the optional extra; `make test` installs it

from pipecat.frames.frames import (  # noqa: E402
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
)
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from integrations.pipecat import PersonaAgentProcessor, PersonaEventFrame, PersonaSafetyFrame  # noqa: E402

pytestmark = pytest.mark.llm


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id="caller", timestamp="2026-12-03T06:00:00Z", finalized=True)


async def test_a_pipecat_pipeline_runs_a_turn_end_to_end(live_server):
    proc = PersonaAgentProcessor(live_server.ws_url, profile="companion", user_id="pipecat-user")
    down, _ = await run_test(
        proc,
        frames_to_send=[said("I have been feeling really anxious about my exams."), SleepFrame(0.1)],
        start_timeout=10,
    )
    kinds = [type(f) for f in down]
    assert kinds[0] is PersonaEventFrame  # the perception comes before the reply
    start, end = kinds.index(LLMFullResponseStartFrame), kinds.index(LLMFullResponseEndFrame)
    text = "".join(f.text for f in down[start:end] if isinstance(f, LLMTextFrame))
    events = {f.event["type"]: f.event for f in down if isinstance(f, PersonaEventFrame)}
    assert {"perception", "persona", "controls", "response.done"} <= set(events)
    assert events["perception"]["top"] == "fear" and text.strip()
    assert text == events["response.done"]["text"]  # every word of the reply reached the pipeline, in order
    assert events["response.done"]["explanation"]


async def test_a_crisis_transcription_gets_the_fixed_reply_and_a_safety_frame(live_server):
    proc = PersonaAgentProcessor(live_server.ws_url)
    down, _ = await run_test(proc, frames_to_send=[said("I want to kill myself tonight.")], start_timeout=10)
    safety = [f.event for f in down if isinstance(f, PersonaSafetyFrame)]
    assert safety and safety[0]["level"] == "crisis" and safety[0]["action"] == "crisis_reply"
    done = [f.event for f in down if isinstance(f, PersonaEventFrame) and f.event["type"] == "response.done"][0]
    assert done["model"] == "fixed:crisis_reply"
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == done["text"]


async def test_pipecats_openai_realtime_service_talks_to_us_audio_in_audio_out(live_server):
    """Pipecat's own OpenAIRealtimeLLMService pointed at /v1/realtime: microphone frames in, the spoken reply out as
    TTS audio frames, in pipecat's own test runner."""
    from pipecat.frames.frames import ErrorFrame, InputAudioRawFrame, TTSAudioRawFrame
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

    from tests.audio import chunks, espeak, silence

    base = live_server.ws_url.removesuffix("/chat") + "/realtime"
    llm = OpenAIRealtimeLLMService(api_key="unused-auth-is-off", base_url=base)
    speech = [
        InputAudioRawFrame(audio=c, sample_rate=16_000, num_channels=1)
        for c in chunks(np.concatenate([silence(0.3), espeak("I passed my driving test this morning!"), silence(1.5)]))
    ]
    down, up = await run_test(llm, frames_to_send=[SleepFrame(1.0), *speech, SleepFrame(25.0)], start_timeout=10)
    assert not [f for f in [*down, *up] if isinstance(f, ErrorFrame)]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and audio[0].sample_rate == 24_000
    assert sum(len(f.audio) for f in audio) / 2 / 24_000 > 1.0  # seconds of reply speech


async def test_our_processor_forwards_the_microphone_and_the_camera(live_server):
    """PersonaAgentProcessor with voice and face on, and no STT service: camera frames (raw RGB, as a transport
    delivers them) and 24 kHz microphone frames go to /v1/chat; the backend hears and sees the user itself — its
    transcript comes back as a TranscriptionFrame, the voice and face readings as perception frames, and both join
    the fusion of the turn it answers."""
    import cv2
    from pipecat.frames.frames import InputAudioRawFrame, InputImageRawFrame

    from tests.audio import espeak, silence
    from tests.conftest import SHARED

    bgr = cv2.imread(str(SHARED / "data" / "faces" / "img1.jpg"))  # a smiling face
    s = 640 / max(bgr.shape[:2])
    rgb = cv2.cvtColor(cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    camera = InputImageRawFrame(image=rgb.tobytes(), size=(rgb.shape[1], rgb.shape[0]), format="RGB")
    speech = np.concatenate([silence(0.3), espeak("I just got the job I wanted so much!"), silence(1.5)])
    t = np.arange(0, speech.size / 16_000, 1 / 24_000)  # the transport's 24 kHz: the processor resamples
    pcm = (np.clip(np.interp(t, np.arange(speech.size) / 16_000, speech), -1, 1) * 32767).astype("<i2").tobytes()
    step = 24_000 * 2 * 20 // 1000
    mic = [
        InputAudioRawFrame(audio=pcm[i : i + step], sample_rate=24_000, num_channels=1)
        for i in range(0, len(pcm), step)
    ]
    proc = PersonaAgentProcessor(live_server.ws_url, voice=True, face=True, user_id="pipecat-av")
    down, _ = await run_test(proc, frames_to_send=[camera, SleepFrame(1.0), *mic, SleepFrame(10.0)], start_timeout=10)
    heard = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert len(heard) == 1 and "job" in heard[0].text.lower(), [f.text for f in heard]
    events = [f.event for f in down if isinstance(f, PersonaEventFrame)]
    read = {e["modality"]: e for e in events if e["type"] == "perception"}
    assert read["face"]["top"] == "joy" and "voice" in read and "text" in read
    done = [e for e in events if e["type"] == "response.done"][0]
    assert {"voice", "face", "text"} <= set(done["explanation"]["present"])
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == done["text"]
