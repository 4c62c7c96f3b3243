"""Prosody: pitch (YIN), energy (RMS), speaking rate (onset rate), pauses, and spectral shape, per utterance.

Fast on CPU: librosa's yin and rms (pyin would be ~50x slower). Features are computed on 16 kHz mono float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.voice.audio import SAMPLE_RATE

FRAME = 1024  # 64 ms at 16 kHz
HOP = 256  # 16 ms
N_MFCC = 13


@dataclass(frozen=True, slots=True)
class Prosody:
    """Human-readable prosody of one utterance (what the `perception` event shows)."""

    pitch_hz_mean: float
    pitch_semitones_std: float
    pitch_semitones_range: float
    energy_db_mean: float
    energy_db_std: float
    voiced_ratio: float
    pause_ratio: float
    onset_rate_hz: float  # acoustic onsets per second of speech: a syllable-rate proxy
    duration_s: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 3) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class ProsodyFeatures:
    prosody: Prosody
    basic: np.ndarray  # [12] pitch/energy statistics (+ MFCC means appended by `peer_vector`)
    mfcc_mean: np.ndarray  # [13]
    full: np.ndarray  # [FULL_DIM] everything the trained head uses


def _semitones(f0: np.ndarray) -> np.ndarray:
    return 12.0 * np.log2(f0 / 100.0)


def extract(audio: np.ndarray, sr: int = SAMPLE_RATE) -> ProsodyFeatures:
    import librosa

    assert audio.ndim == 1, f"mono audio expected, got shape {audio.shape}"
    y = audio.astype(np.float32)
    duration = y.size / sr
    if y.size < FRAME:
        y = np.pad(y, (0, FRAME - y.size))
    peak = float(np.max(np.abs(y))) or 1.0
    y = y / peak  # loudness-normalised: microphone gain says nothing about emotion; dynamics within the clip do
    rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP)[0]  # [T]
    db = 20 * np.log10(np.maximum(rms, 1e-5))  # [T]
    speech = db > (np.max(db) - 35.0)  # frames within 35 dB of the loudest
    f0 = librosa.yin(y, fmin=65.0, fmax=500.0, sr=sr, frame_length=FRAME, hop_length=HOP)  # [T']
    n = min(f0.size, rms.size)
    f0, speech_n, db_n = f0[:n], speech[:n], db[:n]
    voiced = speech_n & (f0 > 66.0) & (f0 < 495.0) & (db_n > np.max(db) - 25.0)
    st = _semitones(f0[voiced]) if voiced.any() else np.zeros(1)
    st_d = np.diff(st) if st.size > 1 else np.zeros(1)
    dbs = db[speech] if speech.any() else db
    onsets = librosa.onset.onset_detect(y=y, sr=sr, hop_length=HOP, units="time")
    speech_s = max(float(speech.sum()) * HOP / sr, 1e-3)
    # pauses: runs of >= 200 ms below the speech threshold, between the first and last speech frame
    idx = np.flatnonzero(speech)
    inner = ~speech[idx[0] : idx[-1] + 1] if idx.size else np.zeros(0, dtype=bool)
    pause_frames = _long_runs(inner, int(0.2 * sr / HOP))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, n_fft=FRAME, hop_length=HOP)  # [13, T]
    mfcc_s = mfcc[:, speech[: mfcc.shape[1]]] if speech.any() else mfcc
    dmfcc = librosa.feature.delta(mfcc_s) if mfcc_s.shape[1] >= 9 else np.zeros_like(mfcc_s)
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=FRAME, hop_length=HOP)[0]
    flatness = librosa.feature.spectral_flatness(y=y, n_fft=FRAME, hop_length=HOP)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=FRAME, hop_length=HOP)[0]
    pitch_hz = float(100.0 * 2 ** (np.mean(st) / 12.0)) if voiced.any() else 0.0
    prosody = Prosody(
        pitch_hz_mean=pitch_hz,
        pitch_semitones_std=float(np.std(st)),
        pitch_semitones_range=float(np.percentile(st, 90) - np.percentile(st, 10)),
        energy_db_mean=float(np.mean(dbs)),
        energy_db_std=float(np.std(dbs)),
        voiced_ratio=float(voiced.mean()) if voiced.size else 0.0,
        pause_ratio=float(pause_frames / max(1, inner.size)),
        onset_rate_hz=float(len(onsets) / speech_s),
        duration_s=duration,
    )
    basic = np.array(
        [
            np.mean(st),
            np.std(st),
            np.percentile(st, 10),
            np.percentile(st, 90),
            np.mean(np.abs(st_d)),
            np.mean(dbs),
            np.std(dbs),
            np.percentile(dbs, 90) - np.percentile(dbs, 10),
            prosody.voiced_ratio,
            prosody.pause_ratio,
            prosody.onset_rate_hz,
            np.max(dbs) - np.mean(dbs),
        ],
        dtype=np.float32,
    )  # [12]
    sc = centroid[speech[: centroid.size]] if speech.any() else centroid
    full = np.concatenate(
        [
            basic,
            mfcc_s.mean(1),
            mfcc_s.std(1),
            np.abs(dmfcc).mean(1),  # [13] x 3
            [np.mean(sc) / 1000, np.std(sc) / 1000, np.mean(flatness), np.mean(zcr), np.std(zcr)],
        ]
    ).astype(np.float32)
    return ProsodyFeatures(prosody=prosody, basic=basic, mfcc_mean=mfcc_s.mean(1).astype(np.float32), full=full)


FULL_DIM = 12 + 3 * N_MFCC + 5


def _long_runs(mask: np.ndarray, min_len: int) -> int:
    """Total length of runs of True at least min_len long."""
    total, run = 0, 0
    for v in mask:
        if v:
            run += 1
        else:
            total += run if run >= min_len else 0
            run = 0
    return total + (run if run >= min_len else 0)
