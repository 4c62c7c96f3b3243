"""Train the facial-expression CNN on FER-2013 train; validate on the public test split only.

    persona-agent train face [--epochs 60] [--out perception/models/face_expression.weights.h5]

Keras 3 on the torch backend. Seeded; augmentation (flip, shift, rotation, zoom, contrast); AdamW with cosine
decay; the best epoch by validation accuracy is kept. Each epoch's state goes to --workdir so an interrupted run
resumes where it stopped (`--resume`).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        x = z["images"].astype(np.float32)[..., None] / 255.0  # [N, 48, 48, 1]
        return x, z["labels"].astype(np.int64)


def train(args: argparse.Namespace) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import torch

    from perception.face.model import build_expression_net

    torch.set_num_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    data = Path(args.data)
    x_tr, y_tr = load_npz(data / "fer2013_train.npz")
    x_va, y_va = load_npz(data / "fer2013_public_test.npz")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    augment = keras.Sequential([
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
        keras.layers.RandomRotation(0.05, fill_mode="nearest"),
        keras.layers.RandomZoom(0.1, fill_mode="nearest"),
        keras.layers.RandomContrast(0.2),
    ], name="augment")
    net = build_expression_net(width=args.width)
    inp = keras.Input((48, 48, 1))
    model = keras.Model(inp, net(augment(inp)))
    steps = int(np.ceil(len(x_tr) / args.batch_size)) * args.epochs
    sched = keras.optimizers.schedules.CosineDecay(args.lr * 0.1, steps, warmup_target=args.lr,
                                                   warmup_steps=int(np.ceil(len(x_tr) / args.batch_size)))
    model.compile(optimizer=keras.optimizers.AdamW(sched, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                  metrics=["accuracy"])
    state = work / "state.keras"
    initial_epoch = 0
    if args.resume and state.exists():
        model = keras.models.load_model(state)
        net = model.get_layer("persona_face_expression")  # the loaded copy, whose weights are saved below
        initial_epoch = json.loads((work / "epoch.json").read_text())["epoch"]
        print(f"resuming after epoch {initial_epoch}")

    class Save(keras.callbacks.Callback):
        best = -1.0

        def on_epoch_end(self, epoch, logs=None):
            model.save(state)
            (work / "epoch.json").write_text(json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}))
            if logs["val_accuracy"] > Save.best:
                Save.best = logs["val_accuracy"]
                net.save_weights(args.out)
                print(f"\nsaved {args.out} (val_accuracy {Save.best:.4f})")

    model.fit(x_tr, y_tr, batch_size=args.batch_size, epochs=args.epochs, initial_epoch=initial_epoch,
              validation_data=(x_va, y_va), callbacks=[Save()], verbose=1)
