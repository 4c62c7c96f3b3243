"""Voice benchmark: speech-to-text WER and real-time factor per shipped model, voice-emotion cross-validation
against a plain peer, end of turn (Smart Turn vs VAD alone), spoken replies (Piper), and end of speech → first reply
token and first reply audio through the live server, Smart Turn vs VAD alone in the same run, and the same Smart
Turn server through /v1/realtime (OpenAI's Realtime events) against /v1/chat.

    .venv/bin/python bench/voice.py [--skip-live] [--trials 8]

WER is scored after Whisper's English text normalizer (numbers, contractions, spelling; package
`whisper-normalizer`), on jfk.flac and on sentences synthesised with espeak-ng (a robotic voice: easier than
real microphones in some ways, harder in others). RTF = processing time / audio duration on 2 threads.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stats import machine, row  # noqa: E402
from perception.voice.audio import SAMPLE_RATE, decode_file  # noqa: E402
from perception.voice.stt import load_stt  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
SENTENCES = [
    "I can't believe it's already the twenty-first of November.",
    "Please call me back at five thirty this afternoon.",
    "The weather has been awful all week, and I'm tired of the rain.",
    "We spent two hundred dollars on groceries last month.",
    "My sister doesn't like coffee, but she loves green tea.",
    "I've been feeling a bit anxious about my job interview tomorrow.",
    "Could you recommend a good book for a long train journey?",
    "The doctor said I should walk for thirty minutes every day.",
    "Honestly, I'm really proud of how much progress we've made.",
    "They're moving to a new apartment near the river in June.",
    "Don't forget to water the plants while I'm away.",
    "It took us three hours to finish the puzzle last night.",
]


def espeak(text: str) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", text], capture_output=True, check=True
    ).stdout
    return decode_file(wav)


def stt_table(models: list[str], threads: int) -> None:
    """WER and time per clip of each model with Whisper's 30 s window and with the short window (the utterance and
    2 s of silence; perception/voice/stt.py), on the same clips in the same run."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    jfk = decode_file((SHARED / "speech" / "jfk.flac").read_bytes())
    say = piper_voice()
    piper = (
        [f"{a} {b}" for a, b in PAUSED] + SENTENCES + [f"{SENTENCES[i]} {SENTENCES[i + 1]}" for i in range(0, 12, 2)]
    )
    sets = {"jfk": [(JFK, jfk)], "espeak": [(s, espeak(s)) for s in SENTENCES], "piper": [(s, say(s)) for s in piper]}
    print(
        f"speech-to-text: jfk.flac (11 s), {len(SENTENCES)} espeak-ng sentences, {len(piper)} Piper utterances "
        f"(1-2 sentences, 2-7 s); {threads} threads, int8, greedy; time per clip, p50 / p95"
    )
    print(
        f"{'model':<34} {'window':>6} {'WER jfk':>8} {'WER espeak':>10} {'WER piper':>9} {'piper ms p50 / p95':>19} "
        f"{'RTF':>6} {'load s':>7}"
    )
    with tempfile.TemporaryDirectory() as cache:
        for name in models:
            for window in ("full", "short"):
                t0 = time.perf_counter()
                stt = load_stt(name, Path(cache), threads=threads, window=window)
                load_s = time.perf_counter() - t0
                stt.transcribe(jfk[:SAMPLE_RATE])  # warm-up
                proc, dur, wer, ms = 0.0, 0.0, {}, []
                for key, clips in sets.items():
                    refs, hyps = [], []
                    for ref, audio in clips:
                        h = stt.transcribe(audio)
                        proc += h.latency_ms / 1000
                        dur += h.duration_s
                        refs.append(norm(ref))
                        hyps.append(norm(h.text))
                        if key == "piper":
                            ms.append(h.latency_ms)
                    wer[key] = jiwer.wer(refs, hyps)
                print(
                    f"{stt.name:<34} {window:>6} {wer['jfk']:>8.3f} {wer['espeak']:>10.3f} {wer['piper']:>9.3f} "
                    f"{np.median(ms):>10.0f} / {np.percentile(ms, 95):>5.0f} {proc / dur:>6.3f} {load_s:>7.2f}"
                )


def emotion_table() -> None:
    from training.voice import ENCODER, compare, read_set

    data = read_set(SHARED / "ravdess")
    n_actors = len(np.unique(data.groups))
    scores = compare(data)
    (acc, f1), (oacc, of1), (pacc, pf1) = scores["ours"], scores["prosody"], scores["peer"]
    print(
        f"voice emotion: RAVDESS actors 1-16, {len(data.y)} clips (one sentence, strong intensity; calm -> neutral),"
        f" leave-one-actor-out over {n_actors} actors, C by an inner leave-one-actor-out — a small set: one clip "
        "more or less right moves accuracy by 0.008"
    )
    print(f"{'model':<72} {'accuracy':>8} {'macro-F1':>8}")
    print(
        f"{f'ours: LR on the Whisper {ENCODER} encoder (mean-pooled, 384) + 56 prosody/spectral':<72} {acc:>8.3f} {f1:>8.3f}"
    )
    print(f"{'before: LR on the 56 prosody/spectral features alone':<72} {oacc:>8.3f} {of1:>8.3f}")
    print(f"{'peer: LR on pitch/energy statistics + MFCC means (25 features)':<72} {pacc:>8.3f} {pf1:>8.3f}")
    print(f"chance (majority class 'neutral'): {np.mean(data.y == np.bincount(data.y).argmax()):.3f}")
    print(f"voice_emotion: ours={acc:.3f} peer={pacc:.3f} gain={(acc - pacc) * 100:+.1f} points")


# Utterances with a pause in mid-sentence: (before the pause, after it). Said with a 0.7 s and a 1.1 s pause: any
# pause longer than VAD's 600 ms ends the turn there (a false cut-off); Smart Turn should hear it is unfinished.
PAUSED = [
    ("I was thinking", "that maybe I should call her."),
    ("So yesterday I went to the", "doctor about my back."),
    ("My sister and I", "are not really talking anymore."),
    ("The thing is", "I don't know what to do next."),
    ("I wanted to ask you about", "my trouble sleeping."),
    ("When I got home last night", "the house was empty."),
    ("I'm not sure if I should", "quit my job or stay."),
    ("Every time I try to", "talk to him, we argue."),
    ("What worries me most is", "that nobody noticed."),
    ("I've been feeling really", "tired for weeks now."),
    ("Could you help me figure out", "how to tell my parents?"),
    ("It started when my boss", "moved me to another team."),
    ("I keep telling myself that", "it will get better."),
    ("The problem with my", "roommate is the noise."),
    ("Because of the exam", "I haven't slept at all."),
    ("If I could just", "have one quiet day."),
    ("My best friend said that", "I should see someone."),
    ("After the accident I", "stopped driving at night."),
    ("I don't really know how to", "explain what happened."),
    ("Last week my dog", "got very sick."),
]


def piper_voice():
    """Speech from the Piper voice (human-like prosody: a falling end on a finished sentence), at 16 kHz."""
    from agent.tts import load_synthesizer

    synth = load_synthesizer()

    def say(text: str) -> np.ndarray:
        x = np.frombuffer(synth.synthesize(text, 0.5), "<i2").astype(np.float32) / 32768
        t = np.arange(0, x.size / synth.sample_rate, 1 / SAMPLE_RATE)
        return np.interp(t, np.arange(x.size) / synth.sample_rate, x).astype(np.float32)

    return say


def turn_table(voice: str, variants: tuple[tuple[float, int], ...] = ()) -> None:
    """Smart Turn vs VAD alone on the same audio, fed through the session's real voice input (VAD, Smart Turn,
    speech-to-text), faster than real time: the delay is counted in audio (stream position), plus the model's own
    compute, reported apart. `voice`: espeak-ng (robotic, flat endings) or piper (human-like prosody); `variants`:
    more Smart Turn settings to compare, (threshold, longest silence in ms)."""
    from agent.runtime import AgentConfig, load_voice_models
    from agent.voice import VoiceConfig, VoiceInput

    models = load_voice_models(AgentConfig(stt_model="tiny.en"))
    assert models.turn is not None, "Smart Turn needs the pipecat-ai wheel"
    say = espeak if voice == "espeak-ng" else piper_voice()
    sr = SAMPLE_RATE
    paused = [
        (np.concatenate([say(a), np.zeros(int(p * sr), np.float32), say(b)]), f"{a} … {b}")
        for p in (0.7, 1.1)
        for a, b in PAUSED
    ]
    complete = [say(f"{a} {b}") for a, b in PAUSED] + [say(t) for t in SENTENCES]

    def speech_end(audio: np.ndarray) -> int:
        loud = np.flatnonzero(np.abs(audio) > 0.02)
        return int(loud[-1]) if loud.size else audio.size

    async def run(audio: np.ndarray, mode: str, **knobs: float) -> tuple[int, float | None]:
        """(number of turns the utterance was cut into, end-of-turn delay in ms of audio after the speech ended)."""
        cfg = VoiceConfig(end_of_turn=mode, interim_every_s=1e9, **knobs)  # type: ignore[arg-type]
        finals: list[int] = []
        vi: VoiceInput | None = None

        async def on_final(utt, uid) -> None:
            assert vi is not None
            if utt is not None and utt.transcript.text:
                finals.append(vi._vad.position)

        async def nothing(*_a) -> None:
            return None

        vi = VoiceInput(models, cfg, on_speech=nothing, on_interim=nothing, on_final=on_final)
        data = np.concatenate([np.zeros(int(0.3 * sr), np.float32), audio, np.zeros(int(2.6 * sr), np.float32)])
        end = int(0.3 * sr) + speech_end(audio)
        for i in range(0, data.size, 320):
            vi.submit(data[i : i + 320])
        while vi.busy:
            await asyncio.sleep(0.01)
        await vi.aclose()
        delay = (finals[-1] - end) / sr * 1000 if finals else None
        return len(finals), delay

    t_model: list[float] = []
    for a in complete[:10]:
        t0 = time.perf_counter()
        models.turn.complete(a)
        t_model.append((time.perf_counter() - t0) * 1000)
    print(
        f"end of turn, {voice} speech: {len(paused)} utterances with a mid-sentence pause (0.7 s / 1.1 s), "
        f"{len(complete)} complete ones"
    )
    print(
        "| end of turn | false cut-offs (paused utterances split in two) | end-of-turn delay on complete utterances, "
        "p50 / p95 (ms of audio after the speech) | turns missed |"
    )
    print("|---|---|---|---|")
    d = VoiceConfig()
    arms: list[tuple[str, str, dict[str, float]]] = [("vad", "VAD alone (600 ms of silence)", {})]
    for threshold, longest in ((0.5, 2000), (d.turn_threshold, d.turn_max_silence_ms), *variants):
        if any(k == {"turn_threshold": threshold, "turn_max_silence_ms": longest} for _, _, k in arms):
            continue
        default = " (the default)" if (threshold, longest) == (d.turn_threshold, d.turn_max_silence_ms) else ""
        label = f"Smart Turn v3.2, finished at p ≥ {threshold:g}, ≤ {longest / 1000:g} s of silence{default}"
        arms.append(("smart_turn", label, {"turn_threshold": threshold, "turn_max_silence_ms": longest}))
    for mode, label, knobs in arms:
        cut = [asyncio.run(run(a, mode, **knobs))[0] for a, _ in paused]
        done = [asyncio.run(run(a, mode, **knobs)) for a in complete]
        delays = [d for _, d in done if d is not None]
        print(
            f"| {label} | {sum(n > 1 for n in cut)} of {len(cut)} | {np.median(delays):.0f} / "
            f"{np.percentile(delays, 95):.0f} | {sum(n == 0 for n, _ in done)} |",
            flush=True,
        )
    print(f"Smart Turn compute per decision: {np.median(t_model):.0f} ms p50 (one thread), added to its delay above")


def tts_table() -> None:
    """Piper (en_US-joe-medium) on one thread: time to synthesise each sentence (the wait before a sentence can be
    heard once its text is complete) and the real-time factor."""
    from agent.tts import load_synthesizer

    synth = load_synthesizer()
    synth.synthesize("Warm-up.", 0.5)
    ms, rtf = [], []
    for t in SENTENCES + [f"{a} {b}" for a, b in PAUSED[:8]]:
        t0 = time.perf_counter()
        pcm = synth.synthesize(t, 0.5)
        dt = time.perf_counter() - t0
        ms.append(dt * 1000)
        rtf.append(dt / (len(pcm) / 2 / synth.sample_rate))
    print(f"spoken replies: {synth.name}, {len(ms)} sentences, one thread")
    print("  " + row("tts_first_audio_per_sentence", ms, what="sentence text complete -> its audio ready"))
    print("  " + row("tts_real_time_factor", rtf, unit="x", what="synthesis time / audio duration"))


async def live_latency(trials: int, voice: str, llm_base_url: str | None = None) -> None:
    """End of speech -> first reply token and -> first reply audio, over the live WebSocket with the real engine:
    a server ending turns with Smart Turn and one with VAD alone (the same engine behind both), in turns. Also where
    the time goes: end of speech -> final transcript received, the speech-to-text time inside it, and the turn's own
    first token and first audio (from the turn's start, `response.done` timings)."""
    import httpx
    import websockets

    from agent import AgentConfig
    from agent.voice import VoiceConfig
    from harness import live_server, metric_sum

    texts = [
        "I had a long day at work and I just want to relax now.",
        "Can you help me calm down before my exam?",
        "My best friend is moving away next month.",
        "I finally finished painting the kitchen today.",
    ]
    say = espeak if voice == "espeak-ng" else piper_voice()
    speech = {t: (np.clip(say(t), -1, 1) * 32767).astype("<i2").tobytes() for t in texts}
    frame = SAMPLE_RATE * 20 // 1000 * 2
    tail = np.zeros(int(2.6 * SAMPLE_RATE), dtype="<i2").tobytes()

    class Speaker:
        """Sends `frames` (20 ms each) at real-time pace, as a microphone would, and notes when the last of the
        first `spoken` frames (the speech; the rest is silence) went out; `after_speech` is sent then."""

        def __init__(self, frames: list[str | bytes], spoken: int, after_speech: str | None = None) -> None:
            self.frames, self.spoken, self.after_speech = frames, spoken, after_speech
            self.end_of_speech: float | None = None

        async def send(self, ws: Any) -> None:
            t0 = time.monotonic()
            for k, data in enumerate(self.frames):
                await ws.send(data)
                if k + 1 >= self.spoken and self.end_of_speech is None:
                    self.end_of_speech = time.monotonic()
                    if self.after_speech is not None:
                        await ws.send(self.after_speech)
                await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))

        def since_end(self) -> float:
            assert self.end_of_speech is not None
            return (time.monotonic() - self.end_of_speech) * 1000

    def framed(data: bytes, size: int) -> list[bytes]:
        return [data[i : i + size] for i in range(0, len(data), size)]

    async def one(url: str, text: str, explicit_end: bool) -> dict[str, float]:
        pcm = speech[text]
        async with websockets.connect(url, max_size=16 * 1024 * 1024) as ws:
            await ws.send(
                json.dumps(
                    {"type": "session.start", "profile": "companion", "consent": {"voice": True}, "voice_reply": True}
                )
            )
            await ws.recv()
            end = json.dumps({"type": "user.audio.end"}) if explicit_end else None
            frames: list[str | bytes] = list(framed(pcm + (b"" if explicit_end else tail), frame))
            mic, out = Speaker(frames, -(-len(pcm) // frame), end), {}
            sender = asyncio.create_task(mic.send(ws))
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 300))
                if ev["type"] == "transcript" and ev["final"] and "final" not in out:
                    out["final"], out["stt"] = mic.since_end(), ev["latency_ms"]
                if ev["type"] == "response.delta" and "first_token" not in out:
                    out["first_token"] = mic.since_end()
                if ev["type"] == "response.audio" and "first_audio" not in out:
                    out["first_audio"] = mic.since_end()
                    out["first_sentence_words"] = len(ev["text"].split())
                if ev["type"] == "response.done":
                    sender.cancel()
                    tm = ev["timings_ms"]
                    out["turn_first_token"] = tm["overhead_before_llm"] + tm["llm_first_token"]
                    out["turn_first_audio"] = tm.get("first_audio") or float("nan")
                    out["timings"], out["reply"] = tm, ev["text"]  # kept in voice-live.json, not tabled
                    return out
                if ev["type"] == "error":
                    raise RuntimeError(ev)

    async def realtime(url: str, text: str) -> dict[str, float]:
        """The same utterance through /v1/realtime (OpenAI's Realtime events, 24 kHz PCM16 in base64 JSON)."""
        import soxr

        pcm = np.frombuffer(speech[text] + tail, dtype="<i2").astype(np.float32) / 32768
        data = (np.clip(soxr.resample(pcm, SAMPLE_RATE, 24_000), -1, 1) * 32767).astype("<i2").tobytes()
        step = 24_000 * 20 // 1000 * 2
        spoken = -(-(len(speech[text]) // 2 * 24_000 // SAMPLE_RATE * 2) // step)  # frames that are speech
        appends: list[str | bytes] = [
            json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(f).decode()})
            for f in framed(data, step)
        ]
        rt = url.removesuffix("/chat") + "/realtime?model=persona-agent:companion"
        async with websockets.connect(rt, max_size=16 * 1024 * 1024) as ws:
            await ws.recv()  # session.created
            mic, out = Speaker(appends, spoken), {"stt": float("nan")}
            sender = asyncio.create_task(mic.send(ws))
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 300))
                kind = ev["type"]
                if kind == "conversation.item.input_audio_transcription.completed" and "final" not in out:
                    out["final"] = mic.since_end()
                if kind == "response.output_audio_transcript.delta" and "first_token" not in out:
                    out["first_token"] = mic.since_end()
                if kind == "response.output_audio.delta" and "first_audio" not in out:
                    out["first_audio"] = mic.since_end()
                if kind == "persona_agent.explanation":
                    sender.cancel()
                    tm = ev["timings_ms"]
                    out["turn_first_token"] = tm["overhead_before_llm"] + tm["llm_first_token"]
                    out["turn_first_audio"] = tm.get("first_audio") or float("nan")
                    return out
                if kind == "error":
                    raise RuntimeError(ev)

    env = {"PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": "48", "PERSONA_STORE": "memory"}
    if llm_base_url:  # e.g. a vLLM on a GPU: the same bench with a faster shared path (turn start -> first audio)
        env["LLM_BASE_URL"] = llm_base_url
    out: dict[str, list[dict[str, float]]] = {"smart_turn": [], "vad": [], "push_to_talk": [], "realtime": []}
    with live_server(ROOT / "bench" / "out" / "voice-smart", env) as smart:
        vad_env = {**env, "LLM_BASE_URL": llm_base_url or f"{smart.llm_url}/v1", "PERSONA_END_OF_TURN": "vad"}
        with live_server(ROOT / "bench" / "out" / "voice-vad", vad_env) as vad:
            await one(smart.ws_url, texts[0], True)  # warm-up both
            await one(vad.ws_url, texts[0], True)
            for i in range(trials):
                t = texts[i % len(texts)]
                out["smart_turn"].append(await one(smart.ws_url, t, False))
                out["vad"].append(await one(vad.ws_url, t, False))
                out["push_to_talk"].append(await one(smart.ws_url, t, True))
                out["realtime"].append(await realtime(smart.ws_url, t))
        exposition = httpx.get(f"{smart.url}/metrics", timeout=10).text
        spec = {
            k: metric_sum(exposition, f'persona_speculative_turns_total{{outcome="{k}"}}')
            for k in ("started", "released", "discarded")
        }
    (ROOT / "bench" / "out" / "voice-live.json").write_text(json.dumps(out, indent=1))
    llm = f"LLM at {llm_base_url}" if llm_base_url else "embedded vLLM, SmolLM2-135M with the persona adapter"
    print(
        f"end of speech -> first reply token / first reply audio over the live WebSocket ({llm}; Piper voice), "
        f"{trials} trials each, {voice} speech:"
    )
    parts = (
        ("final", "end of speech -> final transcript received"),
        ("stt", "speech-to-text of the utterance"),
        ("turn_first_token", "turn start -> first token"),
        ("turn_first_audio", "turn start -> first audio"),
        ("first_token", "end of speech -> first reply token"),
        ("first_audio", "end of speech -> first reply audio"),
    )
    # the server's defaults, which both live servers run with
    pause, silence = VoiceConfig().turn_min_silence_ms, AgentConfig().vad_min_silence_ms
    for k, what in (
        ("vad", f"VAD alone: {silence} ms of silence ends the turn"),
        ("smart_turn", f"Smart Turn: {pause} ms of silence, then the model"),
        ("push_to_talk", "peer: explicit user.audio.end (no silence wait)"),
        ("realtime", "the Smart Turn server through /v1/realtime (OpenAI Realtime events, 24 kHz)"),
    ):
        print(f"  {k}: {what}")
        for part, label in parts:
            print("    " + row(f"{k}_{part}", [o[part] for o in out[k]], what=label))
    for q, name in ((50, "p50"), (95, "p95")):
        ours = np.percentile([o["first_audio"] for o in out["smart_turn"]], q)
        theirs = np.percentile([o["first_audio"] for o in out["realtime"]], q)
        print(
            f"/v1/realtime vs /v1/chat (same server, Smart Turn), end of speech -> first audio {name}: "
            f"{theirs:.0f} vs {ours:.0f} ms ({theirs - ours:+.0f} ms; target within +30 ms)"
        )
    print(
        f"speculative starts on the Smart Turn server (its /v1/chat and /v1/realtime arms and the warm-up): "
        f"{spec['started']:.0f} started, {spec['released']:.0f} released, {spec['discarded']:.0f} discarded"
    )
    v = np.median([o["first_audio"] for o in out["vad"]])
    s_ = np.median([o["first_audio"] for o in out["smart_turn"]])
    print(
        f"smart turn vs VAD alone, end of speech -> first audio p50: {s_:.0f} vs {v:.0f} ms ({(s_ / v - 1) * 100:+.0f}%)"
    )
    # The most any end of turn could win here: one that decided, and had the transcript, the instant the short pause
    # was seen. Everything after the turn starts (first token, first clause, Piper) is shared by both arms.
    after = np.median([o["turn_first_audio"] for o in out["smart_turn"] + out["vad"]])
    vad_end = np.median([o["final"] for o in out["vad"]])
    best = (pause + after) / (vad_end + after) - 1
    print(
        f"bound: turn start -> first audio {after:.0f} ms p50 (both arms), VAD end of speech -> final transcript "
        f"{vad_end:.0f} ms; an instant end of turn at the {pause} ms pause would give {pause + after:.0f} vs "
        f"{vad_end + after:.0f} ms ({best * 100:+.0f}%)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--live-only", action="store_true")
    ap.add_argument(
        "--live-voice",
        choices=("piper", "espeak-ng"),
        default="piper",
        help="the speech sent in the live test (piper: human-like falling ends)",
    )
    ap.add_argument(
        "--llm-base-url",
        help="the live test's LLM (an OpenAI-compatible /v1 URL, e.g. vLLM on a GPU) instead of the embedded engine",
    )
    ap.add_argument(
        "--turn-variants",
        nargs="*",
        default=[],
        metavar="THRESHOLD:MS",
        help="more Smart Turn settings for the end-of-turn table, e.g. 0.3:1200 (threshold, longest silence)",
    )
    args = ap.parse_args()
    print(machine())
    variants = tuple((float(t), int(ms)) for t, ms in (v.split(":") for v in args.turn_variants))
    if args.live_only:
        turn_table("piper", variants)  # the paused utterances' false cut-offs, in the same run
        print()
        asyncio.run(live_latency(args.trials, args.live_voice, args.llm_base_url))
        return
    stt_table(args.models, args.threads)
    print()
    emotion_table()
    for voice in ("espeak-ng", "piper"):
        print()
        turn_table(voice, variants)
    print()
    tts_table()
    if not args.skip_live:
        print()
        asyncio.run(live_latency(args.trials, args.live_voice, args.llm_base_url))


if __name__ == "__main__":
    main()
