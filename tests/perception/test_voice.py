"""Voice perception with the real shipped models: faster-whisper tiny.en, Silero VAD, the RAVDESS voice head (tiny.en's
encoder + prosody)."""

from __future__ import annotations

import difflib
import io
import re

import numpy as np
import pytest
import soundfile as sf

from perception.voice.affect import default_voice_affect_path, load_voice_affect, voice_affect_encoder
from perception.voice.audio import SAMPLE_RATE, AudioError, decode_file, pcm16_to_float
from perception.voice.prosody import FULL_DIM, extract
from perception.voice.stt import load_stt
from perception.voice.vad import load_vad
from tests.audio import espeak, piper, silence
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def stt(tmp_path_factory):
    return load_stt("tiny.en", tmp_path_factory.mktemp("cache"), threads=2)


def test_jfk_transcribed(stt):
    audio = decode_file((SHARED / "data" / "speech" / "jfk.flac").read_bytes())
    t = stt.transcribe(audio)
    assert "ask not what your country can do for you" in t.text.lower().replace(",", "")
    # to the last words: the decode budget once ended the transcript mid-clip (CTranslate2 returns max_length // 2)
    assert " ".join(_words(t.text)).endswith("ask what you can do for your country"), t.text
    assert t.duration_s == pytest.approx(11.0, abs=0.1)


def test_a_long_utterance_is_transcribed_to_its_last_word(stt):
    text = (
        "That is so hard to do. I have been doing it for three years now but still feel like I am not making any "
        "progress. Sometimes I wonder whether I should change my plans entirely, or keep going with what I started "
        "last spring. What do you think I should do next?"
    )
    t = stt.transcribe(piper(text))
    assert 10 < t.duration_s < stt.short_max_s  # the short window
    heard, said = _words(t.text), _words(text)
    assert heard[-4:] == said[-4:], t.text
    assert difflib.SequenceMatcher(a=heard, b=said).ratio() >= 0.9, t.text


# Sentences on which Whisper, given the short window (the utterance and 2 s of silence), transcribes and then starts
# over from the beginning: the repeat must be dropped, with or without a timestamp before it.
RESTARTED = [
    "I wanted to ask you about my trouble sleeping.",
    "I've been feeling really tired for weeks now.",
    "If I could just have one quiet day.",
    "I've been feeling a bit anxious about my job interview tomorrow.",
]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.mark.parametrize("text", RESTARTED)
def test_the_short_window_transcribes_once_like_the_full_one(stt, text):
    audio = piper(text)
    short = stt.transcribe(audio)
    assert stt.short_max_s > short.duration_s
    heard, said = _words(short.text), _words(text)
    assert len(heard) <= len(said) + 1, short.text  # no second copy
    assert difflib.SequenceMatcher(a=heard, b=said).ratio() >= 0.8, short.text


def test_silence_gives_empty_or_no_words(stt):
    assert stt.transcribe(silence(2.0)).words <= 1


def test_vad_finds_speech_between_silences():
    vad = load_vad(min_silence_ms=300).stream()
    speech = espeak("Hello there, this is a test of the voice activity detector.")
    audio = np.concatenate([silence(1.0), speech, silence(1.0)])
    events = []
    for i in range(0, audio.size, 320):
        events += vad.feed(audio[i : i + 320])
    kinds = [e.kind for e in events]
    assert kinds == ["start", "end"], kinds
    start_s, end_s = events[0].sample / SAMPLE_RATE, events[1].sample / SAMPLE_RATE
    assert 0.7 < start_s < 1.3 and abs(end_s - (1.0 + speech.size / SAMPLE_RATE)) < 0.5


def test_vad_streams_are_independent():
    model = load_vad()
    a, b = model.stream(), model.stream()
    a.feed(espeak("Speaking on stream a only."))
    assert a.triggered and not b.triggered


def test_prosody_features_and_head(stt):
    assert voice_affect_encoder(default_voice_affect_path()) == "tiny.en"
    head = load_voice_affect(default_voice_affect_path(), stt.model)
    audio = espeak("I can't believe you did that!")
    f = extract(audio)
    assert f.full.shape == (FULL_DIM,) and np.isfinite(f.full).all()
    assert 80 < f.prosody.pitch_hz_mean < 300 and f.prosody.duration_s > 1
    s = head.perceive(audio)
    assert s.modality == "voice" and abs(float(s.distribution.sum()) - 1) < 1e-5 and 0 <= s.confidence <= 1
    assert head.encoder is not None and head.encoder(audio).shape == (384,)
    assert head.encoder(audio[:800]).shape == (384,)  # 50 ms: still a reading, not an error
    with pytest.raises(AssertionError, match="encoder"):
        load_voice_affect(default_voice_affect_path())  # the head cannot run without the encoder it was trained on


def test_angry_ravdess_clip_reads_angry_over_calm(stt):
    head = load_voice_affect(default_voice_affect_path(), stt.model)
    clip = SHARED / "data" / "ravdess" / "Actor_03"
    angry = head.perceive(decode_file((clip / "03-01-05-02-01-01-03.wav").read_bytes()))
    calm = head.perceive(decode_file((clip / "03-01-02-02-01-01-03.wav").read_bytes()))
    assert angry.valence_arousal[1] > calm.valence_arousal[1]


@pytest.mark.parametrize(
    "data, msg", [(b"", "empty"), (b"not audio at all", "cannot decode"), (b"RIFF\x00\x00", "cannot decode")]
)
def test_bad_files(data, msg):
    with pytest.raises(AudioError, match=msg):
        decode_file(data)


def test_odd_pcm_byte_count():
    with pytest.raises(AudioError, match="even number of bytes"):
        pcm16_to_float(b"\x00\x01\x02")


def test_too_long_file_rejected():
    buf = io.BytesIO()
    sf.write(buf, np.zeros(SAMPLE_RATE * 3, dtype=np.float32), SAMPLE_RATE, format="WAV")
    with pytest.raises(AudioError, match="at most 2 s"):
        decode_file(buf.getvalue(), max_seconds=2)
