"""The embedded engine's dtype: `auto` takes bfloat16 only where the CPU computes it natively."""

from __future__ import annotations

from pathlib import Path

from agent.llm.engine import resolve_dtype


def test_auto_picks_bfloat16_only_with_native_bf16(tmp_path: Path):
    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert resolve_dtype("auto", with_bf16) == "bfloat16"
    assert resolve_dtype("auto", without) == "float32"
    assert resolve_dtype("auto", tmp_path / "missing") == "float32"
    assert resolve_dtype("float32", with_bf16) == "float32"
