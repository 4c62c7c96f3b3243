"""Train and evaluate the gated fusion network on cross-dataset triplets.

    persona-agent train fusion [--epochs 30] [--out fusion/models/gated_fusion.pt]
    persona-agent eval fusion --text TSV --face NPZ --voice DIR [--n 2000] [--seed 7]

Every input is a perceiver's reading of an item it never trained on, as a served turn would be (the perceivers'
training splits read far more confidently than new input, and fusion would learn to trust that):
- text: 60% of GoEmotions dev (the text model trained on GoEmotions train only); with --meld, MELD train as well;
- face: 60% of FER-2013 public test (the face CNN trained on FER-2013 train);
- voice: RAVDESS actors 1-12, each clip read by a voice head fitted without its actor.
The epoch is selected on a second part (20% of GoEmotions dev and FER public test, actors 13-14, voice head fitted on
1-12; with --meld, half of MELD dev), among the epochs whose embeddings never override agreeing readings
(fusion.gated.overridden_readings), and the report is on a third no training or selection has seen (the other 20%,
actors 15-16; the other half of MELD dev). Triplets: one item per modality of the same class, with modality dropout,
conflicting-label and corrupted-input augmentation so the gates learn which modality to trust.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception import LABELS, MODALITIES
from training.fusion_data import Pool

M = len(MODALITIES)


# ---------------------------------------------------------------- triplets
@dataclass(frozen=True)
class Triplets:
    heads: dict[str, np.ndarray]  # m -> [N, H_m]
    embs: dict[str, np.ndarray]  # m -> [N, D_m]
    mask: np.ndarray  # [N, 3]
    y: np.ndarray  # [N]

    def tensors(self):
        import torch

        return (
            {m: torch.from_numpy(v) for m, v in self.heads.items()},
            {m: torch.from_numpy(v) for m, v in self.embs.items()},
            torch.from_numpy(self.mask),
        )


def _by_class(pool: Pool, corrupted: bool) -> list[np.ndarray]:
    return [np.flatnonzero((pool.y == k) & (pool.corrupted == corrupted)) for k in range(len(LABELS))]


def sample_training(
    pools: dict[str, Pool],
    n: int,
    rng: np.random.Generator,
    p_corrupt: float = 0.3,
    p_conflict: float = 0.2,
    p_present: float = 0.75,
) -> Triplets:
    y = rng.integers(0, len(LABELS), n)
    clean = {m: _by_class(p, False) for m, p in pools.items()}
    bad = {m: _by_class(p, True) for m, p in pools.items()}
    mask = (rng.random((n, M)) < p_present).astype(np.float32)
    mask[mask.sum(1) == 0, rng.integers(0, M, int((mask.sum(1) == 0).sum()))] = 1.0
    conflict_m = np.where(rng.random(n) < p_conflict, rng.integers(0, M, n), -1)
    heads: dict[str, np.ndarray] = {}
    embs: dict[str, np.ndarray] = {}
    for j, m in enumerate(MODALITIES):
        idx = np.empty(n, np.int64)
        for i in range(n):
            k = y[i] if conflict_m[i] != j else (y[i] + rng.integers(1, len(LABELS))) % len(LABELS)
            src = bad[m] if rng.random() < p_corrupt else clean[m]
            idx[i] = rng.choice(src[k])
        heads[m], embs[m] = pools[m].heads[idx], pools[m].embs[idx]
    return Triplets(heads, embs, mask, y)


def fixed_triplets(pools: dict[str, Pool], n: int, seed: int) -> tuple[Triplets, Triplets]:
    """n evaluation triplets, balanced over labels, all modalities present: (clean, the same items corrupted)."""
    rng = np.random.default_rng([seed, 9])
    y = np.arange(n) % len(LABELS)
    clean_h, clean_e, bad_h, bad_e = {}, {}, {}, {}
    for m, pool in pools.items():
        cls = _by_class(pool, False)
        idx = np.array([rng.choice(cls[k]) for k in y])
        # the corrupted version of the same source item
        bad_of: dict[int, list[int]] = {}
        for i in np.flatnonzero(pool.corrupted):
            bad_of.setdefault(int(pool.group[i]), []).append(int(i))
        bidx = np.array([rng.choice(bad_of[int(pool.group[i])]) for i in idx])
        clean_h[m], clean_e[m] = pool.heads[idx], pool.embs[idx]
        bad_h[m], bad_e[m] = pool.heads[bidx], pool.embs[bidx]
    ones = np.ones((n, M), np.float32)
    return Triplets(clean_h, clean_e, ones, y), Triplets(bad_h, bad_e, ones, y)


# ---------------------------------------------------------------- evaluation
def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", labels=list(range(len(LABELS))), zero_division=0))


def _run(net, t: Triplets) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.no_grad():
        logits, g, _, _ = net(*t.tensors())
    return logits.argmax(1).numpy(), g.numpy()


def _with(t: Triplets, mask: np.ndarray | None = None, swap: tuple[str, Triplets] | None = None) -> Triplets:
    heads, embs = dict(t.heads), dict(t.embs)
    if swap:
        m, other = swap
        heads[m], embs[m] = other.heads[m], other.embs[m]
    return Triplets(heads, embs, t.mask if mask is None else mask, t.y)


def confidence_peer(t: Triplets) -> np.ndarray:
    """The untrained reference (fusion.ConfidenceFusion): softmax(logit(confidence)) weights on the distributions."""
    conf = np.stack([np.clip(t.heads[m][:, len(LABELS)], 1e-3, 1 - 1e-3) for m in MODALITIES], axis=1)  # [N, 3]
    a = np.where(t.mask > 0, np.log(conf / (1 - conf)), -np.inf)
    w = np.exp(a - a.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    dist = sum(w[:, j : j + 1] * np.exp(t.heads[m][:, : len(LABELS)]) for j, m in enumerate(MODALITIES))
    return dist.argmax(1)


def product_of_experts(t: Triplets) -> np.ndarray:
    """The untrained product of experts: the argmax of the present modalities' summed log-probabilities."""
    logp = sum(t.mask[:, j : j + 1] * t.heads[m][:, : len(LABELS)] for j, m in enumerate(MODALITIES))
    return np.asarray(logp).argmax(1)


def evaluate(net: Any, clean: Triplets, bad: Triplets) -> dict[str, Any]:
    net.eval()
    y = clean.y
    single = {m: macro_f1(y, clean.heads[m][:, : len(LABELS)].argmax(1)) for m in MODALITIES}
    pred, g = _run(net, clean)
    out: dict[str, Any] = {
        "single": single,
        "fused": macro_f1(y, pred),
        "peer_confidence_fusion": macro_f1(y, confidence_peer(clean)),
        "peer_poe": macro_f1(y, product_of_experts(clean)),
        "gates_clean": g.mean(0).round(3).tolist(),
        "missing": {},
        "corrupted": {},
    }
    for j, m in enumerate(MODALITIES):
        mask = np.ones_like(clean.mask)
        mask[:, j] = 0
        p_abs, _ = _run(net, _with(clean, mask=mask))
        rest = [o for o in MODALITIES if o != m]
        best = max(rest, key=lambda o: single[o])
        p_bad, g_bad = _run(net, _with(clean, swap=(m, bad)))
        out["missing"][m] = {"fused": macro_f1(y, p_abs), "best_remaining": best, "best_remaining_f1": single[best]}
        out["corrupted"][m] = {
            "fused": macro_f1(y, p_bad),
            "fused_absent": macro_f1(y, p_abs),
            "poe": macro_f1(y, product_of_experts(_with(clean, swap=(m, bad)))),
            "single_corrupted": macro_f1(y, bad.heads[m][:, : len(LABELS)].argmax(1)),
            "gate_clean": float(g[:, j].mean()),
            "gate_corrupted": float(g_bad[:, j].mean()),
        }
    return out


def format_report(r: dict, n: int) -> str:
    s = r["single"]
    best = max(s, key=s.get)
    lines = [
        f"validation triplets: {n} (balanced over 7 labels); macro-F1 over the 7 shared labels",
        "",
        "| condition | macro-F1 |",
        "|---|---|",
    ]
    lines += [f"| {m} only (its perceiver alone) | {s[m]:.4f} |" for m in MODALITIES]
    lines += [
        f"| peer: confidence-weighted average (untrained) | {r['peer_confidence_fusion']:.4f} |",
        f"| peer: product of experts (sum of log-probabilities, untrained) | {r['peer_poe']:.4f} |",
        f"| **gated fusion, all three** | **{r['fused']:.4f}** |",
        "",
        "| missing | fused | best remaining single | holds |",
        "|---|---|---|---|",
    ]
    for m, v in r["missing"].items():
        lines.append(
            f"| {m} | {v['fused']:.4f} | {v['best_remaining_f1']:.4f} ({v['best_remaining']}) | "
            f"{'yes' if v['fused'] >= v['best_remaining_f1'] else 'NO'} |"
        )
    lines += [
        "",
        "| corrupted | fused | fused with it absent | loss | that modality alone, corrupted | product of experts | "
        "gate clean → corrupted |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, v in r["corrupted"].items():
        loss = v["fused_absent"] - v["fused"]
        lines.append(
            f"| {m} | {v['fused']:.4f} | {v['fused_absent']:.4f} | {loss * 100:+.1f} pts "
            f"{'(ok ≤ 2)' if loss <= 0.02 else '(over 2)'} | {v['single_corrupted']:.4f} | {v['poe']:.4f} | "
            f"{v['gate_clean']:.3f} → {v['gate_corrupted']:.3f} |"
        )
    mods = ", ".join(MODALITIES)
    lines += [
        "",
        f"mean gates on clean triplets ({mods}): {r['gates_clean']}",
        f"fused={r['fused']:.4f} best_single={s[best]:.4f} ({best})",
        f"poe={r['peer_poe']:.4f}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- pools
def load_perceivers(threads: int = 2):
    from perception.face.expression import default_face_model_paths
    from perception.face.perceiver import load_keras_face_perceiver
    from perception.text_model import default_text_model_dir, load_text_model

    text = load_text_model(default_text_model_dir(), threads=threads)
    face = load_keras_face_perceiver(default_face_model_paths(), threads=threads)
    return text, face


SPLITS = ("train", "select", "report")
HELD_OUT_PARTS = (0.6, 0.2, 0.2)  # GoEmotions dev and FER-2013 public test items: fusion train / select / report
VOICE_ACTORS = ((1, 12), (13, 14), (15, 16))  # RAVDESS actors of each split (the voice head of the last two: 1-12)


def build_pools(args: argparse.Namespace, only: tuple[str, ...] = MODALITIES) -> dict[str, dict[str, Pool]]:
    """Pools per split (SPLITS) and modality, each cached in --workdir (delete a file to rebuild it)."""
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared)
    t0 = time.time()
    out: dict[str, dict[str, Pool]] = {split: {} for split in SPLITS}
    for m in only:
        source = f"{m}_meld" if m == "text" and args.meld else m  # a pool file holds one recipe's items
        files = {split: work / f"{split}_{source}.npz" for split in SPLITS}
        if not all(f.exists() for f in files.values()):
            pools = {"text": _text_pools, "face": _face_pools, "voice": _voice_pools}[m](args, shared)
            for split, pool in zip(SPLITS, pools):
                pool.save(files[split])
            print(
                f"{m} pools: "
                + " / ".join(f"{len(p.y)} {s}" for s, p in zip(SPLITS, pools))
                + f" items ({time.time() - t0:.0f} s)",
                flush=True,
            )
        for split in SPLITS:
            out[split][m] = Pool.load(files[split])
    return out


def _text_pools(args: argparse.Namespace, shared: Path) -> tuple[Pool, Pool, Pool]:
    from perception.text_model import default_text_model_dir, load_text_model
    from training.fusion_data import concat_pools, read_goemotions_single, read_meld, split_items, text_pool

    text = load_text_model(default_text_model_dir(), threads=args.threads)

    def pool(texts: list[str], y: np.ndarray, idx: np.ndarray, per_class: int) -> Pool:
        return text_pool(text, [texts[i] for i in idx], y[idx], per_class, args.seed)

    go_texts, go_y = read_goemotions_single(shared / "goemotions" / "dev.tsv")
    go = split_items(go_y, HELD_OUT_PARTS, args.seed)
    parts = [
        [pool(go_texts, go_y, idx, cap)]
        for idx, cap in zip(go, (args.per_class, args.val_per_class, args.val_per_class))
    ]
    if args.meld:
        meld_texts, meld_y = read_meld(shared / "meld" / "train_sent_emo.csv")
        dev_texts, dev_y = read_meld(shared / "meld" / "dev_sent_emo.csv")
        meld_dev = split_items(dev_y, (0.5, 0.5), args.seed)
        parts[0].append(pool(meld_texts, meld_y, np.arange(len(meld_y)), args.per_class))
        parts[1].append(pool(dev_texts, dev_y, meld_dev[0], args.val_per_class))
        parts[2].append(pool(dev_texts, dev_y, meld_dev[1], args.val_per_class))
    train, select, report = (concat_pools(p) for p in parts)
    return train, select, report


def _face_pools(args: argparse.Namespace, shared: Path) -> tuple[Pool, Pool, Pool]:
    from perception.face.expression import default_face_model_paths
    from perception.face.perceiver import load_keras_face_perceiver
    from training.fusion_data import face_pool, read_fer_npz, split_items

    face = load_keras_face_perceiver(default_face_model_paths(), threads=args.threads)
    x, y = read_fer_npz(shared / "fer2013" / "fer2013_public_test.npz")
    parts = split_items(y, HELD_OUT_PARTS, args.seed)
    pools = [
        face_pool(face, x[idx], y[idx], cap, args.seed)
        for idx, cap in zip(parts, (args.per_class, args.val_per_class, args.val_per_class))
    ]
    return pools[0], pools[1], pools[2]


def _voice_pools(args: argparse.Namespace, shared: Path) -> tuple[Pool, Pool, Pool]:
    """Actors 1-12 read by heads fitted without the actor (honest inputs); 13-14 and 15-16 by a head fitted on 1-12."""
    from perception.voice.affect import default_voice_affect_path, head_features, voice_affect_encoder
    from perception.voice.prosody import extract
    from training.fusion_data import read_voice_dir, voice_head, voice_pool
    from training.voice import load_audio, load_encoder

    paths, y, actors = read_voice_dir(shared / "ravdess")
    audios = [load_audio(p) for p in paths]
    encoder = load_encoder() if voice_affect_encoder(default_voice_affect_path()) else None  # as the shipped head
    feats = np.stack([head_features(encoder, a, extract(a).full) for a in audios])
    c = float(json.loads(str(np.load(default_voice_affect_path())["meta"]))["C"])
    tr = np.flatnonzero((actors >= VOICE_ACTORS[0][0]) & (actors <= VOICE_ACTORS[0][1]))
    parts = []
    for a in np.unique(actors[tr]):
        fit, held = tr[actors[tr] != a], tr[actors[tr] == a]
        p = voice_pool(
            voice_head(feats[fit], y[fit], c, encoder),
            [audios[i] for i in held],
            y[held],
            args.voice_variants,
            args.seed + int(a),
        )
        parts.append(Pool(p.heads, p.embs, p.y, p.corrupted, held[p.group]))
    train = Pool(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("heads", "embs", "y", "corrupted", "group"))
    )
    head = voice_head(feats[tr], y[tr], c, encoder)
    held_out = []
    for lo, hi in VOICE_ACTORS[1:]:
        idx = np.flatnonzero((actors >= lo) & (actors <= hi))
        p = voice_pool(head, [audios[i] for i in idx], y[idx], args.voice_variants, args.seed)
        held_out.append(Pool(p.heads, p.embs, p.y, p.corrupted, idx[p.group]))
    return train, held_out[0], held_out[1]


# ---------------------------------------------------------------- training
def split_descriptions(meld: bool) -> dict[str, dict[str, str]]:
    """What each split of a run holds (HELD_OUT_PARTS, VOICE_ACTORS, --meld), for the weights' record."""
    (tr_lo, tr_hi) = VOICE_ACTORS[0]
    meld_part = ("MELD train", "half of MELD dev", "the other half of MELD dev")
    out = {}
    for i, split in enumerate(SPLITS):
        share = f"{'the other ' if i == 2 else ''}{HELD_OUT_PARTS[i]:.0%}"
        lo, hi = VOICE_ACTORS[i]
        out[split] = {
            "text": f"{share} of GoEmotions dev"
            + (" (single-class messages)" if i == 0 else "")
            + (f" + {meld_part[i]}" if meld else ""),
            "face": f"{share} of FER-2013 public test",
            "voice": f"RAVDESS actors {lo}-{hi}, "
            + ("read by heads fitted without the actor" if i == 0 else f"head fitted on actors {tr_lo}-{tr_hi}"),
        }
    return out


HYPER: dict[str, Any] = {"hidden": 64, "emb_proj": 16, "gate_hidden": 32, "dropout": 0.3, "emb_dropout": 0.85}


def train(args: argparse.Namespace) -> None:
    import torch
    from tqdm import tqdm

    from fusion.gated import GatedFusion, GMUWeights, build_gmu, overridden_readings

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    pools = build_pools(args)
    train_pools = pools["train"]
    clean, bad = fixed_triplets(pools["select"], args.val_n, args.seed)
    hyper = {**HYPER, "emb_dropout": args.emb_dropout}
    net = build_gmu(**hyper)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed)
    best: tuple[int, float] | None = None
    best_epoch, best_state, history = 0, None, []
    for epoch in range(args.epochs):
        net.train()
        t = sample_training(train_pools, args.per_epoch, rng)
        heads, embs, mask = t.tensors()
        yy = torch.from_numpy(t.y)
        order = torch.randperm(len(yy))
        losses = []
        for s in tqdm(range(0, len(yy), 256), desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=5, leave=False):
            b = order[s : s + 256]
            logits, g, _, per = net({m: v[b] for m, v in heads.items()}, {m: v[b] for m, v in embs.items()}, mask[b])
            aux = torch.nn.functional.cross_entropy(
                per.reshape(-1, len(LABELS)), yy[b].repeat_interleave(M), reduction="none"
            )
            aux = (aux.reshape(-1, M) * mask[b]).sum() / mask[b].sum()
            loss = torch.nn.functional.cross_entropy(logits, yy[b]) + args.aux_weight * aux
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        r = evaluate(net, clean, bad)
        # selection (on the select split): the fused score averaged with the worst corrupted-modality score
        score = (r["fused"] + min(v["fused"] for v in r["corrupted"].values())) / 2
        # an epoch whose embedding path overrides agreeing readings (fusion.gated.overridden_readings) is kept only
        # if no epoch keeps that contract: fewest overrides first, then the select score
        overridden = len(overridden_readings(GatedFusion(GMUWeights.from_state_dict(net.state_dict()), "epoch")))
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "val_fused": r["fused"],
                "val_select": score,
                "overridden_readings": overridden,
            }
        )
        print(
            f"epoch {epoch + 1}: loss {np.mean(losses):.4f} val fused {r['fused']:.4f} select {score:.4f} "
            f"overridden {overridden}",
            flush=True,
        )
        if best is None or (-overridden, score) > best:
            best, best_epoch, best_state = (
                (-overridden, score),
                epoch + 1,
                {k: v.clone() for k, v in net.state_dict().items()},
            )
    assert best is not None and best_state is not None, "no epochs"
    net.load_state_dict(best_state)
    if best[0] < 0:
        print(f"WARNING: every epoch lets embeddings override agreeing readings; kept the fewest ({-best[0]})")
    r = evaluate(net, *fixed_triplets(pools["report"], args.val_n, args.seed))
    print(f"report split (no training or selection saw its items), epoch {best_epoch}:")
    print(format_report(r, args.val_n))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    meta = {
        "version": "1",
        "hyperparameters": hyper,
        "seed": args.seed,
        "epochs": args.epochs,
        "inputs": "every item read by a perceiver that never trained on it",
        "splits": split_descriptions(args.meld),
        "pool_sizes": {s: {m: int(len(p[m].y)) for m in MODALITIES} for s, p in pools.items()},
        "report_metrics": r,
        "history": history,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(f"saved {out}")


def eval_cli(args: argparse.Namespace) -> int:
    """Triplets from any splits in the shared formats, read by the shipped perceivers and fusion."""
    from fusion.gated import default_fusion_path, load_gmu_module
    from perception.voice.affect import default_voice_affect_path, load_voice_affect, voice_affect_encoder
    from training.fusion_data import face_pool, read_fer_npz, read_text_split, read_voice_dir, text_pool, voice_pool
    from training.voice import load_audio, load_encoder

    text, face = load_perceivers(args.threads)
    texts, ty = read_text_split(Path(args.text))
    pools = {"text": text_pool(text, texts, ty, args.per_class, args.seed)}
    x, y = read_fer_npz(Path(args.face))
    pools["face"] = face_pool(face, x, y, args.per_class, args.seed)
    paths, y, _ = read_voice_dir(Path(args.voice))
    head = default_voice_affect_path()
    whisper = load_encoder().model if voice_affect_encoder(head) else None
    pools["voice"] = voice_pool(load_voice_affect(head, whisper), [load_audio(p) for p in paths], y, 1, args.seed)
    net, _ = load_gmu_module(args.model or default_fusion_path())
    clean, bad = fixed_triplets(pools, args.n, args.seed)
    print(format_report(evaluate(net, clean, bad), args.n))
    return 0
