"""Audio in: PCM16 frames from the WebSocket, or whole files (WAV, FLAC, OGG, MP3) decoded in memory."""
from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """Audio that cannot be used; the message says why."""


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit mono PCM → float32 in [-1, 1]. An odd byte count is an error, not a guess."""
    if len(data) % 2:
        raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def decode_file(data: bytes, max_seconds: float | None = None) -> np.ndarray:
    """Any container PyAV/FFmpeg reads → float32 mono at 16 kHz, without touching the disk."""
    from faster_whisper.audio import decode_audio

    if not data:
        raise AudioError("empty audio file")
    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types for corrupt input
        raise AudioError(f"cannot decode audio: {type(exc).__name__}: {str(exc)[:200]}") from None
    if audio.size == 0:
        raise AudioError("the file holds no audio samples")
    if max_seconds is not None and audio.size > max_seconds * SAMPLE_RATE:
        raise AudioError(f"audio is {audio.size / SAMPLE_RATE:.0f} s long; at most {max_seconds:.0f} s")
    return audio.astype(np.float32)
