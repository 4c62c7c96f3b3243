"""Unimodal sets → per-modality feature pools for the gated fusion network, clean and corrupted.

There are no aligned text+face+voice recordings with our labels, so fusion learns from triplets built across three
unimodal sets that share the 7 labels: one GoEmotions message, one FER-2013 face and one RAVDESS utterance of the
same class. Each item is run through the real perceiver, once clean and once corrupted (garbled text; blurred,
occluded, noisy or dark faces; quiet, noisy audio), and the fusion inputs (fusion.features) are stored.

Every item is one its perceiver never trained on, so fusion learns from the confidence a perceiver has on new input,
not on its own training set (where it is right far more often): text from GoEmotions dev, and optionally MELD (the
text model trained on GoEmotions train only), faces from FER-2013 public test (the face CNN trained on FER-2013 train), voice read
by heads fitted without the clip's actor. `split_items` cuts such a set into fusion train / select / report parts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion.features import embedding_vector, head_vector
from perception import LABELS, ModalitySignal


@dataclass(frozen=True)
class Pool:
    """One modality's items: heads [N, H], embeddings [N, D], labels [N], corrupted [N] bool, group [N] (the source
    item, shared by its clean and corrupted versions)."""

    heads: np.ndarray
    embs: np.ndarray
    y: np.ndarray
    corrupted: np.ndarray
    group: np.ndarray

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, heads=self.heads, embs=self.embs, y=self.y, corrupted=self.corrupted, group=self.group
        )

    @staticmethod
    def load(path: Path) -> Pool:
        with np.load(path) as z:
            return Pool(z["heads"], z["embs"], z["y"], z["corrupted"], z["group"])


def _pool(signals: list[ModalitySignal], y: np.ndarray, corrupted: np.ndarray, group: np.ndarray) -> Pool:
    return Pool(
        np.stack([head_vector(s) for s in signals]),
        np.stack([embedding_vector(s) for s in signals]),
        y.astype(np.int64),
        corrupted.astype(bool),
        group.astype(np.int64),
    )


def _take(y: np.ndarray, per_class: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices: up to per_class of each label (all when None), shuffled."""
    idx = []
    for k in range(len(LABELS)):
        members = np.flatnonzero(y == k)
        idx.append(members if per_class is None else rng.permutation(members)[:per_class])
    return rng.permutation(np.concatenate(idx))


# ---------------------------------------------------------------- text
def read_goemotions_single(path: Path) -> tuple[list[str], np.ndarray]:
    """Messages whose GoEmotions labels all fall in one shared class (the rest are ambiguous for a triplet)."""
    from training.goemotions import ekman_matrix, read_tsv

    split = read_tsv(path)
    shared = (split.y @ ekman_matrix()) > 0  # [N, 7]
    keep = np.flatnonzero(shared.sum(1) == 1)
    return [split.texts[i] for i in keep], shared[keep].argmax(1)


def read_meld(path: Path) -> tuple[list[str], np.ndarray]:
    """MELD's `*_sent_emo.csv` (utterances from TV dialogue; its 7 emotions are our labels) → texts and label indices."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Utterance"].strip()]
    return [r["Utterance"].strip() for r in rows], np.array([LABELS.index(r["Emotion"].strip().lower()) for r in rows])


def read_text_split(path: Path) -> tuple[list[str], np.ndarray]:
    """A GoEmotions TSV (single-class messages) or a MELD CSV, by suffix."""
    return read_meld(path) if path.suffix == ".csv" else read_goemotions_single(path)


def split_items(y: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Item indices cut into len(fractions) disjoint parts, stratified by label (each label's items shuffled and
    shared out in these proportions), seeded."""
    rng = np.random.default_rng([seed, 11])
    edges = np.cumsum(fractions) / np.sum(fractions)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for k in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == k))
        cuts = np.round(edges * len(members)).astype(int)
        for j, part in enumerate(np.split(members, cuts[:-1])):
            parts[j].append(part)
    return [np.sort(np.concatenate(p)) for p in parts]


def concat_pools(pools: Sequence[Pool]) -> Pool:
    """Pools of different sources as one; group ids are offset so that items of different sources never share one."""
    offset, groups = 0, []
    for p in pools:
        groups.append(p.group + offset)
        offset += int(p.group.max()) + 1 if len(p.group) else 0
    return Pool(
        np.concatenate([p.heads for p in pools]),
        np.concatenate([p.embs for p in pools]),
        np.concatenate([p.y for p in pools]),
        np.concatenate([p.corrupted for p in pools]),
        np.concatenate(groups),
    )


def corrupt_text(text: str, rng: np.random.Generator) -> str:
    """What a bad transcript or a hurried thumb produces: words dropped and characters swapped or replaced."""
    words = [w for w in text.split() if rng.random() > 0.5] or [text.split()[0] if text.split() else "uh"]
    out = []
    for word in words:
        w = list(word)
        for _ in range(int(rng.integers(0, 3))):
            i = int(rng.integers(0, len(w)))
            w[i] = chr(int(rng.integers(97, 123))) if rng.random() < 0.5 else w[i - 1]
        out.append("".join(w))
    return " ".join(out)


def text_pool(model, texts: Sequence[str], y: np.ndarray, per_class: int | None, seed: int) -> Pool:
    """Up to per_class messages of each label, read clean and corrupted by `model` (group: the index in `texts`)."""
    rng = np.random.default_rng([seed, 1])
    idx = _take(y, per_class, rng)
    clean = [texts[i] for i in idx]
    bad = [corrupt_text(t, rng) for t in clean]
    signals = []
    for batch in range(0, len(idx) * 2, 64):
        both = (clean + bad)[batch : batch + 64]
        signals += model.perceive_batch(both)
    n = len(idx)
    return _pool(signals, np.concatenate([y[idx], y[idx]]), np.r_[np.zeros(n), np.ones(n)], np.r_[idx, idx])


# ---------------------------------------------------------------- face
def corrupt_face(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """48x48 uint8 → the same face seen badly: one or two of heavy blur, a large occluder, strong noise, darkness."""
    import cv2

    x: np.ndarray = img.astype(np.float32)
    for kind in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        if kind == 0:
            x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(2.0, 4.0)))
        elif kind == 1:
            h, w = int(rng.integers(20, 34)), int(rng.integers(24, 48))
            y0, x0 = int(rng.integers(0, 48 - h + 1)), int(rng.integers(0, 48 - w + 1))
            x[y0 : y0 + h, x0 : x0 + w] = float(rng.uniform(0, 255))
        elif kind == 2:
            x = x + rng.normal(0, float(rng.uniform(40, 80)), x.shape)
        else:
            x = x * float(rng.uniform(0.1, 0.3))
    return np.clip(x, 0, 255).astype(np.uint8)


def face_pool(perceiver, images: np.ndarray, labels: np.ndarray, per_class: int | None, seed: int) -> Pool:
    from perception.face.perceiver import face_signal

    rng = np.random.default_rng([seed, 2])
    idx = _take(labels, per_class, rng)
    clean = images[idx]
    bad = np.stack([corrupt_face(im, rng) for im in clean])
    signals = []
    for im in np.concatenate([clean, bad]):
        sig = face_signal(perceiver.read(im, crop=True), 0.0, perceiver.name)
        assert sig is not None
        signals.append(sig)
    n = len(idx)
    return _pool(signals, np.concatenate([labels[idx], labels[idx]]), np.r_[np.zeros(n), np.ones(n)], np.r_[idx, idx])


def read_fer_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An npz like FER-2013's (`images` uint8 [N, 48, 48], `labels`, `classes`) → images and shared-label indices."""
    from perception.face.model import FER_TO_SHARED

    with np.load(path, allow_pickle=False) as z:
        classes = [str(c) for c in z["classes"]]
        mapping = np.array([LABELS.index(FER_TO_SHARED[c]) for c in classes])
        return z["images"], mapping[z["labels"].astype(int)]


# ---------------------------------------------------------------- voice
def corrupt_audio(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same utterance from far away or in a noisy room: 30-45 dB quieter and/or white noise at 0-10 dB SNR."""
    out = audio.astype(np.float32)
    kinds = rng.choice(2, size=int(rng.integers(1, 3)), replace=False)
    if 1 in kinds:
        p = float(np.mean(out**2)) + 1e-12
        out = out + rng.normal(0, np.sqrt(p / 10 ** (rng.uniform(0, 10) / 10)), out.shape).astype(np.float32)
    if 0 in kinds:
        out = out * 10 ** (-rng.uniform(30, 45) / 20)
    return out


def read_voice_dir(folder: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """A RAVDESS-style folder: labels.csv with path, emotion (RAVDESS names or shared labels) and actor columns."""
    from training.voice import RAVDESS_TO_SHARED

    with open(folder / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    paths = [folder / r["path"] for r in rows]
    y = np.array([LABELS.index(RAVDESS_TO_SHARED.get(r["emotion"], r["emotion"])) for r in rows])
    actors = np.array([int(r.get("actor", 0) or 0) for r in rows])
    return paths, y, actors


def voice_pool(affect, audios: list[np.ndarray], y: np.ndarray, variants: int, seed: int) -> Pool:
    """Each clip clean plus `variants` corrupted versions, read by `affect` (a VoiceAffectModel)."""
    rng = np.random.default_rng([seed, 3])
    signals, ys, bad, group = [], [], [], []
    for i, a in enumerate(audios):
        for v in range(variants + 1):
            signals.append(affect.perceive(a if v == 0 else corrupt_audio(a, rng)))
            ys.append(y[i])
            bad.append(v > 0)
            group.append(i)
    return _pool(signals, np.array(ys), np.array(bad), np.array(group))


def voice_head(x: np.ndarray, y: np.ndarray, c: float, encoder=None):
    """A VoiceAffectModel fitted on clean features (as `persona-agent train voice` does): the encoder's then the
    prosody features when `encoder` (a WhisperEncoderFeatures) is given, else prosody alone."""
    from perception.voice.affect import VoiceAffectModel
    from training.voice import fit_logreg

    scaler, clf = fit_logreg(x, y, c)
    coef = np.zeros((len(LABELS), x.shape[1]), np.float32)
    bias = np.full(len(LABELS), -30.0, np.float32)  # a label missing from training is never predicted
    coef[clf.classes_] = clf.coef_
    bias[clf.classes_] = clf.intercept_
    return VoiceAffectModel(
        mean=scaler.mean_.astype(np.float32),
        scale=scaler.scale_.astype(np.float32),
        coef=coef,
        bias=bias,
        name="voice-head-fold",
        encoder=encoder,
    )


def save_meta(path: Path, meta: dict) -> None:
    path.write_text(json.dumps(meta, indent=1))
