"""Voice affect head: the Whisper tiny.en encoder's output (mean-pooled; the speech-to-text model's own encoder) and
prosody/spectral features → 7 shared labels, a logistic regression trained on RAVDESS (actors 1–16).

    persona-agent train voice [--data ../shared/data/ravdess] [--out perception/models/voice_affect.npz]

RAVDESS here is small (128 clips: 16 actors x 8 emotions, one sentence, strong intensity), so the figures come
from leave-one-actor-out cross-validation (C picked by an inner leave-one-actor-out, so a held-out actor never
influences any choice), and the shipped head is refit on all 16 actors afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.environment import DEFAULT_CACHE_DIR
from perception.labels import LABELS
from perception.voice.audio import SAMPLE_RATE
from perception.voice.prosody import extract

RAVDESS_TO_SHARED = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "joy",
    "sad": "sadness",
    "angry": "anger",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
}


ENCODER = "tiny.en"  # the speech-to-text model shipped by default: its encoder is already loaded


@dataclass(frozen=True)
class VoiceSet:
    full: np.ndarray  # [N, FULL_DIM]
    enc: np.ndarray  # [N, encoder dim] mean-pooled Whisper encoder output
    peer: np.ndarray  # [N, 25] pitch/energy statistics + MFCC means
    y: np.ndarray  # [N] index into LABELS
    groups: np.ndarray  # [N] actor id
    paths: list[str]

    @property
    def head(self) -> np.ndarray:
        """[N, encoder dim + FULL_DIM]: what the shipped head reads, in its order (perception.voice.affect.head_features)."""
        return np.hstack([self.enc, self.full])


def load_audio(path: Path) -> np.ndarray:
    import librosa
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE) if sr != SAMPLE_RATE else y


def load_encoder(threads: int = 2):
    from perception.voice.affect import WhisperEncoderFeatures
    from perception.voice.stt import load_stt

    stt = load_stt(ENCODER, DEFAULT_CACHE_DIR, threads=threads)
    return WhisperEncoderFeatures(stt.model, f"whisper-{ENCODER}-encoder")


def read_set(folder: Path) -> VoiceSet:
    with open(folder / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    encoder = load_encoder()
    full, enc, peer, y, groups, paths = [], [], [], [], [], []
    for r in rows:
        audio = load_audio(folder / r["path"])
        f = extract(audio)
        full.append(f.full)
        enc.append(encoder(audio))
        peer.append(np.concatenate([f.basic, f.mfcc_mean]))
        y.append(LABELS.index(RAVDESS_TO_SHARED[r["emotion"]]))
        groups.append(int(r["actor"]))
        paths.append(r["path"])
    return VoiceSet(np.stack(full), np.stack(enc), np.stack(peer), np.array(y), np.array(groups), paths)


def fit_logreg(x: np.ndarray, y: np.ndarray, c: float, seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced", random_state=seed)
    clf.fit(scaler.transform(x), y)
    return scaler, clf


def loao(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float) -> tuple[float, float, np.ndarray]:
    """Leave-one-actor-out: accuracy, macro-F1 over the labels present, and the out-of-fold predictions."""
    from sklearn.metrics import f1_score

    pred = np.zeros_like(y)
    for g in np.unique(groups):
        tr, te = groups != g, groups == g
        scaler, clf = fit_logreg(x[tr], y[tr], c)
        pred[te] = clf.predict(scaler.transform(x[te]))
    return float((pred == y).mean()), float(f1_score(y, pred, average="macro")), pred


C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def nested_loao(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Outer leave-one-actor-out; C chosen by an inner leave-one-actor-out on the remaining actors only, so the
    held-out actor never influences any choice."""
    from sklearn.metrics import f1_score

    pred = np.zeros_like(y)
    for g in np.unique(groups):
        tr = groups != g
        best_c = max(C_GRID, key=lambda c: loao(x[tr], y[tr], groups[tr], c)[1])
        scaler, clf = fit_logreg(x[tr], y[tr], best_c)
        pred[~tr] = clf.predict(scaler.transform(x[~tr]))
    return float((pred == y).mean()), float(f1_score(y, pred, average="macro"))


def compare(data: VoiceSet) -> dict[str, tuple[float, float]]:
    """Leave-one-actor-out (accuracy, macro-F1) on the same folds: the shipped head's features ("ours"), the prosody
    features alone ("prosody", the previous head) — both with C by an inner leave-one-actor-out — and the plain peer."""
    return {
        "ours": nested_loao(data.head, data.y, data.groups),
        "prosody": nested_loao(data.full, data.y, data.groups),
        "peer": loao(data.peer, data.y, data.groups, 1.0)[:2],
    }


def train(args: argparse.Namespace) -> None:
    data = read_set(Path(args.data))
    x = data.head
    scores = compare(data)
    (acc, f1), (pacc, pf1), (eacc, ef1) = scores["ours"], scores["prosody"], scores["peer"]
    print(f"leave-one-actor-out on {len(data.y)} clips, {len(np.unique(data.groups))} actors (C by inner LOAO):")
    print(
        f"  ours (LR on the Whisper {ENCODER} encoder, mean-pooled, {data.enc.shape[1]} + {data.full.shape[1]} "
        f"prosody/spectral features): acc {acc:.3f} macro-F1 {f1:.3f}"
    )
    print(
        f"  prosody/spectral features alone ({data.full.shape[1]}, the previous head): acc {pacc:.3f} macro-F1 {pf1:.3f}"
    )
    print(
        f"  peer (LR on pitch/energy stats + MFCC means, {data.peer.shape[1]} features): acc {eacc:.3f} macro-F1 {ef1:.3f}"
    )
    if args.c is None:  # the shipped head: C by leave-one-actor-out over all 16 actors
        args.c = max(C_GRID, key=lambda c: loao(x, data.y, data.groups, c)[1])
    scaler, clf = fit_logreg(x, data.y, args.c)
    coef = np.zeros((len(LABELS), x.shape[1]), dtype=np.float32)
    bias = np.full(len(LABELS), -30.0, dtype=np.float32)  # a label never seen in training gets ~0 probability
    coef[clf.classes_] = clf.coef_
    bias[clf.classes_] = clf.intercept_
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        mean=scaler.mean_.astype(np.float32),
        scale=scaler.scale_.astype(np.float32),
        coef=coef,
        bias=bias,
        labels=np.array(LABELS),
        meta=json.dumps(
            {
                "trained_on": "RAVDESS actors 1-16 (128 clips)",
                "C": args.c,
                "encoder": ENCODER,
                "encoder_dim": int(data.enc.shape[1]),
                "loao_acc": round(acc, 4),
                "loao_macro_f1": round(f1, 4),
                "prosody_only_loao_acc": round(pacc, 4),
                "peer_loao_acc": round(eacc, 4),
            }
        ),
    )
    print(f"wrote {out}")
