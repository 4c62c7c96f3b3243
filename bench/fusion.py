"""Gated fusion on the report triplets (items no fusion training or epoch selection saw, each read by a perceiver
that never trained on it: part of GoEmotions dev, of FER-2013 public test, RAVDESS actors 15-16): each
modality alone, two untrained peers (confidence-weighted average, product of experts), the trained network with all
three, with one missing, with one corrupted (and where the gate weight goes). Then a replayed conversation through the real perceivers, fusion and
persona tracker, plotted to bench/out/fusion_replay.png (gate weights and valence/arousal per turn).

    .venv/bin/python bench/fusion.py            (uses the feature pools cached by `persona-agent train fusion`)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.stats import machine  # noqa: E402
from perception.environment import configure_third_party  # noqa: E402

configure_third_party()

SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out"


def table(args: argparse.Namespace) -> None:
    from fusion.gated import default_fusion_path, load_gmu_module
    from training.args import add_fusion_arguments
    from training.fusion import build_pools, evaluate, fixed_triplets, format_report

    trainer = argparse.ArgumentParser()
    add_fusion_arguments(trainer)  # the pools `persona-agent train fusion` builds with its defaults
    ns = trainer.parse_args(["--workdir", args.workdir, "--shared", str(SHARED)])
    clean, bad = fixed_triplets(build_pools(ns)["report"], args.n, args.seed)
    net, _ = load_gmu_module(args.model or default_fusion_path())
    print(format_report(evaluate(net, clean, bad), args.n))


def replay() -> None:
    """12 turns: a user who starts low and recovers; the camera goes dark for three turns, the microphone drops out."""
    import csv

    from agent import AgentConfig, load_face_perceiver, load_voice_models
    from fusion.gated import default_fusion_path, load_gated_fusion
    from perception import LABELS
    from perception.face.perceiver import face_signal
    from perception.text_model import load_text_model
    from persona import PersonaState, PersonaTracker, read_style
    from training.fusion_data import corrupt_face
    from training.voice import RAVDESS_TO_SHARED, load_audio

    text = load_text_model(None, threads=2)
    face = load_face_perceiver(AgentConfig(model_threads=2))
    voice = load_voice_models(AgentConfig(model_threads=2)).affect
    fusion, tracker = load_gated_fusion(default_fusion_path()), PersonaTracker()
    with np.load(SHARED / "fer2013" / "fer2013_public_test.npz") as z:
        faces, face_y = z["images"], z["labels"]
    clips = {}
    with open(SHARED / "ravdess" / "labels.csv") as fh:
        labels = list(csv.DictReader(fh))
    for r in labels:
        if int(r["actor"]) > 12:
            clips.setdefault(RAVDESS_TO_SHARED[r["emotion"]], r["path"])
    script = [  # (message, label, face: clean|dark|none, voice: yes|no)
        ("I haven't been sleeping and everything feels heavy.", "sadness", "clean", "yes"),
        ("I miss my brother so much since he moved away.", "sadness", "clean", "yes"),
        ("Honestly I'm scared I will fail my exams.", "fear", "clean", "yes"),
        ("I don't know, I just feel empty.", "sadness", "dark", "yes"),
        ("My friend says I should talk to someone.", "neutral", "dark", "no"),
        ("Maybe that's a good idea.", "neutral", "dark", "no"),
        ("I called the counselling service today.", "neutral", "clean", "no"),
        ("It actually went better than I expected!", "joy", "clean", "yes"),
        ("They were so kind, I was surprised.", "surprise", "clean", "yes"),
        ("I feel lighter already, thank you.", "joy", "clean", "yes"),
        ("I'm going to see my brother next month!", "joy", "none", "yes"),
        ("Thanks for listening to me.", "joy", "clean", "yes"),
    ]
    rng = np.random.default_rng(3)
    state, t, rows = PersonaState.initial(0.0), 0.0, []
    for i, (msg, label, cam, mic) in enumerate(script):
        k = LABELS.index(label)
        signals = {"text": text.perceive(msg)}
        if cam != "none":
            img = faces[face_y == k][i]
            img = corrupt_face(img, rng) if cam == "dark" else img
            sig = face_signal(face.read(img, crop=True), 0.0, face.name)
            if sig is not None:
                signals["face"] = sig
        if mic == "yes":
            signals["voice"] = voice.perceive(load_audio(SHARED / "ravdess" / clips[label]))
        p = fusion.fuse(signals)
        conf = sum(p.gates[m] * signals[m].confidence for m in p.present)
        t += 30.0
        state = tracker.update(state, p, read_style(msg), conf, t)
        rows.append(
            (
                i + 1,
                label,
                cam,
                mic,
                dict(p.gates),
                LABELS[int(np.argmax(p.distribution))],
                state.valence,
                state.arousal,
                state.dominant_emotion,
            )
        )
    print("\nreplayed conversation (real perceivers → gated fusion → persona tracker):")
    print(
        "| turn | script label | camera | mic | gates text / voice / face | fused top | persona valence | arousal | dominant |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, label, cam, mic, g, top, v, a, dom in rows:
        print(
            f"| {n} | {label} | {cam} | {mic} | {g['text']:.2f} / {g['voice']:.2f} / {g['face']:.2f} | {top} | "
            f"{v:+.2f} | {a:+.2f} | {dom} |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = [r[0] for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    bottom = np.zeros(len(rows))
    for m, color in (("text", "#4b7bec"), ("voice", "#e8590c"), ("face", "#2f9e6e")):
        vals = np.array([r[4][m] for r in rows])
        ax1.bar(turns, vals, bottom=bottom, color=color, label=m)
        bottom += vals
    for n, _, cam, mic, *_ in rows:
        note = ("dark cam " if cam == "dark" else "no cam " if cam == "none" else "") + (
            "no mic" if mic == "no" else ""
        )
        if note:
            ax1.text(n, 1.02, note.strip(), ha="center", fontsize=7)
    ax1.set_ylabel("gate weight")
    ax1.set_ylim(0, 1.12)
    ax1.legend(loc="upper left", fontsize=8, ncol=3)
    ax1.set_title("Gated fusion over a replayed conversation")
    ax2.plot(turns, [r[6] for r in rows], "-o", color="#2f9e6e", label="valence")
    ax2.plot(turns, [r[7] for r in rows], "-o", color="#e8590c", label="arousal")
    for n, label, *_ in rows:
        ax2.text(n, -1.05, label, ha="center", fontsize=7, rotation=30)
    ax2.axhline(0, color="#ccc")
    ax2.set_ylim(-1.15, 1)
    ax2.set_ylabel("persona")
    ax2.set_xlabel("turn (script label below)")
    ax2.legend(loc="upper left", fontsize=8)
    OUT.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(OUT / "fusion_replay.png", dpi=110)
    print(f"plot: {OUT / 'fusion_replay.png'}")


def latency() -> None:
    from fusion import ConfidenceFusion
    from fusion.gated import default_fusion_path, load_gated_fusion
    from perception import LABELS, ModalitySignal

    def sig(m, d):
        dist = np.full(7, 0.05, np.float32)
        dist[0] = 0.7
        return ModalitySignal(m, dist / dist.sum(), np.zeros(d, np.float32), 0.6, 0.0, "x", {"quality": {}})

    signals = {"text": sig("text", 384), "voice": sig("voice", 56), "face": sig("face", 256)}
    for name, f in (
        ("gated (ours)", load_gated_fusion(default_fusion_path())),
        ("confidence peer", ConfidenceFusion()),
    ):
        ts = []
        for _ in range(300):
            t0 = time.perf_counter()
            f.fuse(signals)
            ts.append((time.perf_counter() - t0) * 1000)
        print(
            f"fusion latency, {name}: p50 {np.median(ts):.3f} ms, p95 {np.percentile(ts, 95):.3f} ms (3 modalities, 300 calls)"
        )
    assert len(LABELS) == 7


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=str(ROOT / ".cache" / "fusion-pools-heldout"))
    ap.add_argument("--model", help="fusion weights to score (default: the shipped ones)")
    ap.add_argument("--n", type=int, default=2100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print(machine())
    table(args)
    latency()
    replay()


if __name__ == "__main__":
    main()
