"""Voice benchmark: speech-to-text WER and real-time factor per shipped model, voice-emotion cross-validation
against a plain peer, and end-of-speech → first reply token through the live server.

    .venv/bin/python bench/voice.py [--skip-live] [--trials 8]

WER is scored after Whisper's English text normalizer (numbers, contractions, spelling; package
`whisper-normalizer`), on jfk.flac and on sentences synthesised with espeak-ng (a robotic voice: easier than
real microphones in some ways, harder in others). RTF = processing time / audio duration on 2 threads.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", text], capture_output=True, check=True).stdout
    return decode_file(wav)


def stt_table(models: list[str], threads: int) -> None:
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    jfk = decode_file((SHARED / "speech" / "jfk.flac").read_bytes())
    synth = [(s, espeak(s)) for s in SENTENCES]
    print(f"speech-to-text: jfk.flac (11 s) and {len(SENTENCES)} espeak-ng sentences; {threads} threads, int8, greedy")
    print(f"{'model':<34} {'WER jfk':>8} {'WER espeak':>10} {'RTF':>6} {'load s':>7}")
    with tempfile.TemporaryDirectory() as cache:
        for name in models:
            t0 = time.perf_counter()
            stt = load_stt(name, Path(cache), threads=threads)
            load_s = time.perf_counter() - t0
            stt.transcribe(jfk[:SAMPLE_RATE])  # warm-up
            proc, dur = 0.0, 0.0
            hyp = stt.transcribe(jfk)
            proc += hyp.latency_ms / 1000
            dur += hyp.duration_s
            wer_jfk = jiwer.wer(norm(JFK), norm(hyp.text))
            refs, hyps = [], []
            for ref, audio in synth:
                h = stt.transcribe(audio)
                proc += h.latency_ms / 1000
                dur += h.duration_s
                refs.append(norm(ref))
                hyps.append(norm(h.text))
            wer_synth = jiwer.wer(refs, hyps)
            print(f"{stt.name:<34} {wer_jfk:>8.3f} {wer_synth:>10.3f} {proc / dur:>6.3f} {load_s:>7.2f}")


def emotion_table() -> None:
    from training.voice import loao, nested_loao, read_set

    data = read_set(SHARED / "ravdess")
    n_actors = len(np.unique(data.groups))
    acc, f1 = nested_loao(data.full, data.y, data.groups)
    pacc, pf1, _ = loao(data.peer, data.y, data.groups, 1.0)
    print(f"voice emotion: RAVDESS actors 1-16, {len(data.y)} clips (one sentence, strong intensity; calm -> neutral),"
          f" leave-one-actor-out over {n_actors} actors — a small set: one clip more or less right moves accuracy by 0.008")
    print(f"{'model':<64} {'accuracy':>8} {'macro-F1':>8}")
    print(f"{'ours: LR on 56 prosody+spectral features (C by inner LOAO)':<64} {acc:>8.3f} {f1:>8.3f}")
    print(f"{'peer: LR on pitch/energy statistics + MFCC means (25 features)':<64} {pacc:>8.3f} {pf1:>8.3f}")
    print(f"chance (majority class 'neutral'): {np.mean(data.y == np.bincount(data.y).argmax()):.3f}")


async def live_latency(trials: int) -> None:
    import websockets

    from harness import live_server

    speech = espeak("I had a long day at work and I just want to relax now.")
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()
    tail = np.zeros(int(2.0 * SAMPLE_RATE), dtype="<i2").tobytes()
    frame = SAMPLE_RATE * 20 // 1000 * 2

    async def one(url: str, explicit_end: bool) -> float:
        async with websockets.connect(url, max_size=8 * 1024 * 1024) as ws:
            await ws.send(json.dumps({"type": "session.start", "profile": "companion", "consent": {"voice": True}}))
            await ws.recv()
            data = pcm + (b"" if explicit_end else tail)
            t0 = time.monotonic()
            end_of_speech = None
            for i in range(0, len(data), frame):
                await ws.send(data[i:i + frame])
                if i + frame >= len(pcm) and end_of_speech is None:
                    end_of_speech = time.monotonic()
                    if explicit_end:
                        await ws.send(json.dumps({"type": "user.audio.end"}))
                await asyncio.sleep(max(0.0, t0 + (i // frame + 1) * 0.02 - time.monotonic()))
            while True:
                ev = json.loads(await ws.recv())
                if ev["type"] == "response.delta":
                    return (time.monotonic() - end_of_speech) * 1000
                if ev["type"] == "error":
                    raise RuntimeError(ev)

    with live_server(ROOT / "bench" / "out", {"PERSONA_LLM_TEMPERATURE": "0", "PERSONA_LLM_MAX_TOKENS": "32"}) as srv:
        vad = [await one(srv.ws_url, False) for _ in range(trials)]
        ptt = [await one(srv.ws_url, True) for _ in range(trials)]
    print(f"end of speech -> first reply token over the live WebSocket (embedded vLLM, SmolLM2-135M), {trials} trials each:")
    print("  " + row("VAD turn detection (no end msg)", vad, what="includes the 600 ms silence that ends a turn"))
    print("  " + row("peer: explicit user.audio.end", ptt, what="push-to-talk: no silence wait"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--skip-live", action="store_true")
    args = ap.parse_args()
    print(machine())
    stt_table(args.models, args.threads)
    print()
    emotion_table()
    if not args.skip_live:
        print()
        asyncio.run(live_latency(args.trials))


if __name__ == "__main__":
    main()
