"""Speech for tests, synthesised with Debian's espeak-ng (installed by .ci/run) and decoded in memory."""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np
import pytest

from perception.voice.audio import SAMPLE_RATE, decode_file


def espeak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """float32 mono 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng; .ci/run does it)")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    ).stdout
    return decode_file(wav)


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def chunks(audio: np.ndarray, ms: int = 20) -> list[bytes]:
    """PCM16 frames as a browser AudioWorklet would send them."""
    n = SAMPLE_RATE * ms // 1000
    return [to_pcm16(audio[i : i + n]) for i in range(0, audio.size, n)]


def to_16k(pcm: bytes, rate: int) -> np.ndarray:
    """PCM16 at `rate` (e.g. a reply's Piper audio at 22,050 Hz) as float32 mono 16 kHz."""
    x = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    t = np.arange(0, len(x) / rate, 1 / SAMPLE_RATE)
    return np.interp(t, np.arange(len(x)) / rate, x).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _piper_voice():
    from agent.tts import load_synthesizer

    return load_synthesizer()


def piper(text: str) -> np.ndarray:
    """float32 mono 16 kHz from the shipped Piper voice (human-like prosody)."""
    synth = _piper_voice()
    return to_16k(synth.synthesize(text, 0.5), synth.sample_rate)
