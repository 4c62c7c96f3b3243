"""Train deepface's own emotion architecture on FER-2013 train, so `DeepFace.analyze` runs offline.

    persona-agent train deepface [--epochs 16] [--out perception/models/deepface/facial_expression_model_weights.pth]

deepface ships no weights and downloads them at run time, which fails offline. This trains its PyTorch
`EmotionModel` (imported from deepface itself, so the architecture is exactly the one it loads) on the same data and
augmentation as our model, and writes the state dict under the file name deepface looks for in
`$DEEPFACE_HOME/.deepface/weights/`. The epoch is picked on a tenth of FER-2013 train held out (`--val-share`, as
`train face`); public test is only recorded. It is a peer for our Keras model and an
optional serving backend (`PERSONA_FACE_BACKEND=deepface`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from training.face import augment_batch, fer_splits


def _logits(m, x):
    """EmotionModel.forward without its final softmax (training wants logits)."""
    x = m.pool_1(m.relu(m.conv_1(x)))
    x = m.pool_2(m.relu(m.conv_3(m.relu(m.conv_2(x)))))
    x = m.pool_3(m.relu(m.conv_5(m.relu(m.conv_4(x)))))
    x = m.dropout_1(m.relu(m.fc_1(x.flatten(1))))
    return m.fc_3(m.dropout_2(m.relu(m.fc_2(x))))


def train(args: argparse.Namespace) -> None:
    import torch
    from deepface.models.demography.pytorch.Emotion import EmotionModel
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = Path(args.data)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te), validation = fer_splits(data, args.val_share, args.seed)
    model = EmotionModel()
    # The plain (no batch-norm) stack sat on the majority class for epochs with PyTorch's default init and a
    # one-cycle schedule. He-normal init, a first-layer bias that centres the [0, 1] input (deepface feeds [0, 1],
    # so the input itself cannot be centred), a near-zero output layer and a short warm-up let it start learning.
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if mod.bias is not None:
                torch.nn.init.zeros_(mod.bias)
    with torch.no_grad():
        model.conv_1.bias.copy_(-0.5 * model.conv_1.weight.sum((1, 2, 3)))
        torch.nn.init.normal_(model.fc_3.weight, std=0.01)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = len(x_tr) // args.batch_size
    total, warm = steps_per_epoch * args.epochs, steps_per_epoch // 2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda i: (
            min(1.0, (i + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, max(0, i - warm) / max(1, total - warm))))
        ),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best, history = -1.0, []

    def predict(x: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        with torch.no_grad():
            return torch.cat([model(xt[i : i + 512]) for i in range(0, len(xt), 512)]).argmax(1).numpy()

    for epoch in range(args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(len(x_tr))
        model.train()
        t0, losses = time.time(), []
        for s in tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=10):
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            xb = torch.from_numpy(augment_batch(x_tr[idx], rng, size=48, strength=args.aug)).permute(0, 3, 1, 2)
            loss = torch.nn.functional.cross_entropy(_logits(model, xb), torch.from_numpy(y_tr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        acc = float((predict(x_va) == y_va).mean())
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_accuracy": acc}
        if args.val_share > 0:  # for the record only: public test never picks an epoch here
            row["public_test_accuracy"] = float((predict(x_te) == y_te).mean())
        history.append({**row, "seconds": round(time.time() - t0, 1)})
        print(
            f"epoch {epoch + 1}: loss {np.mean(losses):.4f} val_accuracy {acc:.4f} "
            f"public_test_accuracy {row.get('public_test_accuracy', acc):.4f} ({time.time() - t0:.0f} s)",
            flush=True,
        )
        if acc > best:
            best = acc
            torch.save(model.state_dict(), out)
            print(f"saved {out} (val_accuracy {best:.4f})", flush=True)
    out.with_name("training.json").write_text(
        json.dumps(
            {
                "architecture": "deepface.models.demography.pytorch.Emotion.EmotionModel (deepface 0.0.103)",
                "data": {
                    "train": f"fer2013_train.npz ({len(y_tr)} of 28,709)",
                    "validation": validation,
                    "reported": "fer2013_public_test.npz (3,589)",
                },
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "augmentation": args.aug,
                "weight_decay": args.weight_decay,
                "seed": args.seed,
                "best_val_accuracy": best,
                "history": history,
            },
            indent=1,
        )
    )
