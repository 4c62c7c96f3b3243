"""Train the facial-expression CNN on FER-2013 train; pick the epoch on a split carved from train.

    persona-agent train face [--epochs 30] [--val-share 0.1] [--out perception/models/face_expression.weights.h5]

The best epoch is chosen on a stratified, seeded share of the training split (`--val-share`; images that also occur
in the rest of train are moved back to train, so the held-out part has no exact duplicates of what is trained on). The
public test split is scored once per epoch for the record and never picks anything. `--val-share 0` restores the
old behaviour (epochs picked on public test), kept only to reproduce earlier cards.

Keras 3 on the torch backend. Seeded; augmentation in numpy/OpenCV (random --crop window, mirror, rotation and
scale, brightness/contrast, random erasing); AdamW with warm-up and cosine decay; label smoothing. Validation is
the centre window averaged with its mirror, exactly as served. The best epoch by validation accuracy is kept.
Each epoch's state (and a snapshot of its weights) goes to --workdir so an interrupted run resumes where it
stopped (`--resume`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from perception.environment import require_keras_backend
from perception.face.model import CROP, INPUT, center_crop


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        x = z["images"].astype(np.float32)[..., None] / 255.0  # [N, 48, 48, 1]
        return x, z["labels"].astype(np.int64)


def carve_validation(x: np.ndarray, y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): a stratified `share` of each class, seeded (`split_items`); a validation image
    whose exact pixels also occur among the training indices goes back to train (FER-2013 has duplicates)."""
    from training.fusion_data import split_items

    keep, held = split_items(y, (1 - share, share), seed)
    seen_in_train = {x[i].tobytes() for i in keep}
    dup = np.array([x[i].tobytes() in seen_in_train for i in held], bool)
    return np.sort(np.concatenate([keep, held[dup]])), held[~dup]


Split = tuple[np.ndarray, np.ndarray]  # (images [N, 48, 48, 1] in [0, 1], labels [N])


def fer_splits(data: Path, val_share: float, seed: int) -> tuple[Split, Split, Split, str]:
    """(train, validation, public test) as (x, y) pairs, and a line saying what validation is: `val_share` of
    FER-2013 train carved out (`carve_validation`), or with 0 the public test split itself (earlier cards' way)."""
    x_tr, y_tr = load_npz(data / "fer2013_train.npz")
    x_te, y_te = load_npz(data / "fer2013_public_test.npz")
    if val_share > 0:
        keep, held = carve_validation(x_tr, y_tr, val_share, seed)
        validation = (
            f"{len(held)} of fer2013_train.npz (stratified {val_share:g}, seed {seed}, no exact duplicates of train)"
        )
        out: tuple[Split, Split, Split, str] = (
            (x_tr[keep], y_tr[keep]),
            (x_tr[held], y_tr[held]),
            (x_te, y_te),
            validation,
        )
    else:
        out = (x_tr, y_tr), (x_te, y_te), (x_te, y_te), "fer2013_public_test.npz (3,589)"
    print(f"train {len(out[0][1])}, validation {out[3]}", flush=True)
    return out


def accuracy_f1(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro-F1 over the seven classes (the fusion trainer's `macro_f1`) of [N, 7] scores."""
    from training.fusion import macro_f1

    pred = probs.argmax(1)
    return float((pred == y).mean()), macro_f1(y, pred)


def augment_batch(x: np.ndarray, rng: np.random.Generator, size: int = CROP, strength: float = 1.0) -> np.ndarray:
    """[B, 48, 48, 1] in [0, 1] -> [B, size, size, 1] augmented: a random window jittered by up to 8 px
    (for size 48, of the image padded by 4 px with its reflection). `strength` scales the photometric and
    geometric ranges and the erasing probability (a lighter second stage)."""
    import cv2

    out = np.empty((len(x), size, size, 1), np.float32)
    c = INPUT / 2
    pad = (size + 8 - INPUT) // 2
    for i, img in enumerate(x[..., 0]):
        m = cv2.getRotationMatrix2D((c, c), rng.uniform(-12, 12) * strength, 1 + rng.uniform(-0.1, 0.12) * strength)
        img = cv2.warpAffine(img, m, (INPUT, INPUT), borderMode=cv2.BORDER_REFLECT_101)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        if pad:
            img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        ox, oy = rng.integers(0, 9, size=2)
        img = img[oy : oy + size, ox : ox + size]
        img = (img - 0.5) * (1 + rng.uniform(-0.25, 0.3) * strength) + 0.5 + rng.uniform(-0.12, 0.12) * strength
        if rng.random() < 0.4 * strength:  # random erasing: a grey patch where an occluder (hand, hair) might be
            eh, ew = rng.integers(6, 17, size=2)
            ey, ex = rng.integers(0, size - eh), rng.integers(0, size - ew)
            img = img.copy()
            img[ey : ey + eh, ex : ex + ew] = rng.random()
        out[i, ..., 0] = np.clip(img, 0.0, 1.0)
    return out


def predict_tta(net, x48: np.ndarray, batch: int = 256, crop: int = CROP) -> np.ndarray:
    """Softmax of the centre window averaged with its mirror. x48: [N, 48, 48, 1] in [0, 1]."""
    import keras

    xc = center_crop(x48, crop)
    probs = []
    for s in range(0, len(xc), batch):
        b = xc[s : s + batch]
        both = np.concatenate([b, b[:, :, ::-1]])
        p = keras.ops.convert_to_numpy(keras.ops.softmax(net(both, training=False), axis=-1))
        probs.append((p[: len(b)] + p[len(b) :]) / 2)
    return np.concatenate(probs)


def train(args: argparse.Namespace) -> None:
    require_keras_backend()
    import keras
    import torch
    from tqdm import tqdm

    from perception.face.model import build_expression_net

    torch.set_num_threads(args.threads)
    args.crop = args.crop or CROP
    keras.utils.set_random_seed(args.seed)
    data = Path(args.data)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te), validation = fer_splits(data, args.val_share, args.seed)
    onehot = np.eye(7, dtype=np.float32)[y_tr]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    net = build_expression_net(width=args.width, dropout=args.dropout, crop=args.crop)
    before: dict | None = None
    if args.init:
        net.load_weights(args.init)
        meta = Path(args.init).with_name("face_expression.training.json")
        before = json.loads(meta.read_text()) if meta.exists() else {"weights": str(args.init)}
        print(f"warm restart from {args.init}")
    steps_per_epoch = len(x_tr) // args.batch_size
    sched = keras.optimizers.schedules.CosineDecay(
        args.lr * 0.1, steps_per_epoch * max(1, args.epochs - 1), warmup_target=args.lr, warmup_steps=steps_per_epoch
    )
    opt = keras.optimizers.AdamW(sched, weight_decay=args.weight_decay)
    net.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))
    state, log_path = work / "state.weights.h5", work / "log.json"
    history: list[dict] = []
    start_epoch, best = 0, -1.0
    if args.resume and log_path.exists():
        history = json.loads(log_path.read_text())
        start_epoch = len(history)
        best = max(h["val_accuracy"] for h in history)
        # build the optimizer variables before loading them
        net.train_on_batch(x_tr[:2, : args.crop, : args.crop], onehot[:2])
        net.load_weights(state)
        opt_state = np.load(work / "optimizer.npz")
        for v, k in zip(opt.variables, sorted(opt_state.files, key=int)):
            v.assign(opt_state[k])
        print(f"resuming after epoch {start_epoch} (best val_accuracy {best:.4f})")
    for epoch in range(start_epoch, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(len(x_tr))
        t0, losses = time.time(), []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=10)
        for s in bar:
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            loss = net.train_on_batch(augment_batch(x_tr[idx], rng, size=args.crop, strength=args.aug), onehot[idx])
            losses.append(float(np.asarray(loss).ravel()[0]))
            if s % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        acc, f1 = accuracy_f1(predict_tta(net, x_va, crop=args.crop), y_va)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_accuracy": acc, "val_macro_f1": f1}
        if args.val_share > 0:  # for the record only: public test never picks an epoch here
            row["public_test_accuracy"], row["public_test_macro_f1"] = accuracy_f1(
                predict_tta(net, x_te, crop=args.crop), y_te
            )
        history.append({**row, "seconds": round(time.time() - t0, 1)})
        print(
            f"epoch {epoch + 1}: loss {np.mean(losses):.4f} val_accuracy {acc:.4f} val_macro_f1 {f1:.4f} "
            f"public_test_accuracy {row.get('public_test_accuracy', acc):.4f} ({time.time() - t0:.0f} s)",
            flush=True,
        )
        if acc > best:
            best = acc
            net.save_weights(args.out)
            print(f"saved {args.out} (val_accuracy {best:.4f})", flush=True)
        net.save_weights(state)
        shutil.copyfile(state, work / f"epoch-{epoch + 1:02d}.weights.h5")  # snapshots, for weight averaging
        np.savez(work / "optimizer.npz", **{str(i): keras.ops.convert_to_numpy(v) for i, v in enumerate(opt.variables)})
        log_path.write_text(json.dumps(history, indent=1))
    summary = {
        "data": {
            "train": f"fer2013_train.npz ({len(y_tr)} of 28,709)",
            "validation": validation,
            "reported": "fer2013_public_test.npz (3,589)",
        },
        "width": args.width,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "seed": args.seed,
        "augmentation": args.aug,
        "dropout": args.dropout,
        "crop": args.crop,
        "best_val_accuracy": best,
        "history": history,
    }
    if before is not None:
        summary["initialised_from"] = before  # the earlier stage, with its own settings and history
    Path(args.out).with_name("face_expression.training.json").write_text(json.dumps(summary, indent=1))
