"""Audio in: PCM16 frames from the WebSocket, or whole files (WAV, FLAC, OGG, MP3) decoded in memory."""

from __future__ import annotations

import io
import itertools

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
    """Any container PyAV/FFmpeg reads → float32 mono at 16 kHz, without touching the disk. The length is checked
    while decoding: a small file that decodes to hours (two hours of silence in 0.5 MB of FLAC) is refused once it
    passes `max_seconds`, having held no more than that much audio."""
    import av

    if not data:
        raise AudioError("empty audio file")
    limit = int(max_seconds * SAMPLE_RATE) if max_seconds is not None else None
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("the file holds no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            frames = container.decode(audio=0)
            for frame in itertools.chain(frames, [None]):  # None flushes the resampler
                for out in resampler.resample(frame):
                    pcm = out.to_ndarray().reshape(-1)
                    total += pcm.size
                    if limit is not None and total > limit:
                        raise AudioError(f"audio is longer than {max_seconds:.0f} s; at most {max_seconds:.0f} s")
                    chunks.append(pcm)
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types for corrupt input
        raise AudioError(f"cannot decode audio: {type(exc).__name__}: {str(exc)[:200]}") from None
    if total == 0:
        raise AudioError("the file holds no audio samples")
    return np.concatenate(chunks).astype(np.float32) / 32768.0
