"""Spoken replies over the real WebSocket: the real engine's reply, synthesised by the real Piper voice, heard back
by the real faster-whisper model."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from agent.tts import SentenceSplitter, length_scale, load_synthesizer
from tests.server.wsutil import WS

pytestmark = pytest.mark.llm


def words(text: str) -> list[str]:
    return ["".join(c for c in w if c.isalnum()) for w in text.lower().replace("-", " ").split() if any(c.isalnum() for c in w)]


def to_16k(pcm: bytes, rate: int) -> np.ndarray:
    x = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    t = np.arange(0, len(x) / rate, 1 / 16000)
    return np.interp(t, np.arange(len(x)) / rate, x).astype(np.float32)


async def test_a_spoken_reply_says_the_reply_text(live_server):
    import jiwer

    from perception.voice.stt import load_stt
    from perception.environment import DEFAULT_CACHE_DIR

    ws = await WS.connect(live_server.ws_url)
    started = await ws.start(profile="companion", voice_reply=True)
    assert started["voice_reply"] is True
    events = await ws.turn("I finally finished my thesis after three years!")
    types = [e["type"] for e in events]
    done = events[-1]
    assert done["type"] == "response.done" and done["text"].strip()
    start = events[types.index("response.audio.start")]
    audio = [e for e in events if e["type"] == "response.audio"]
    assert start["format"] == "pcm16le" and start["sample_rate"] == 22050 and start["channels"] == 1
    assert types.index("response.audio.start") < types.index("response.audio") < types.index("response.audio.done") \
        < types.index("response.done")
    assert [a["index"] for a in audio] == list(range(len(audio)))
    # every word the user read is spoken, in order, and the sentence timings tile the audio
    assert words(" ".join(a["text"] for a in audio)) == words(done["text"])
    pcm = b"".join(base64.b64decode(a["audio"]) for a in audio)
    for a, b in zip(audio, audio[1:]):
        assert b["start_ms"] == pytest.approx(a["start_ms"] + a["duration_ms"], abs=0.2)
    total_ms = len(pcm) / 2 / start["sample_rate"] * 1000
    assert events[types.index("response.audio.done")]["duration_ms"] == pytest.approx(total_ms, abs=1.0)
    assert done["timings_ms"]["first_audio"] > 0
    stt = load_stt("base", DEFAULT_CACHE_DIR, threads=2)
    heard = stt.transcribe(to_16k(pcm, start["sample_rate"])).text
    wer = jiwer.wer(" ".join(words(done["text"])), " ".join(words(heard)))
    assert wer <= 0.15, (done["text"], heard, wer)
    await ws.close()


async def test_text_only_sessions_get_no_audio(live_server):
    ws = await WS.connect(live_server.ws_url)
    started = await ws.start(profile="companion")
    assert started["voice_reply"] is False
    types = [e["type"] for e in await ws.turn("Hello there.")]
    assert "response.done" in types and not any(t.startswith("response.audio") for t in types)
    await ws.close()


def test_pace_sets_the_speaking_rate():
    synth = load_synthesizer()
    assert length_scale(0.0) == 1.25 and length_scale(0.5) == 1.0 and length_scale(1.0) == 0.8
    text = "Take a slow breath, and tell me what happened this morning."
    slow, fast = (len(synth.synthesize(text, pace)) for pace in (0.0, 1.0))
    assert slow > 1.35 * fast  # 1.25 / 0.8 = 1.56 in phoneme length; pauses and padding scale less


def test_sentences_come_out_as_they_end():
    s = SentenceSplitter()
    assert s.feed("Hello the") == []
    assert s.feed("re. How are") == ["Hello there."]
    assert s.feed(" you?\nI am fine") == ["How are you?"]
    assert s.flush() == ["I am fine"] and s.flush() == []
