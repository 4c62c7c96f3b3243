"""Decoding camera frames from bytes, in memory only, with limits checked before any pixels are decoded."""

from __future__ import annotations

import struct

import numpy as np

MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096


class ImageError(ValueError):
    """Why an image was refused; `code` is the wire error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from a JPEG or PNG header without decoding it."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("invalid_image", "truncated PNG header")
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                raise ImageError("invalid_image", "corrupt JPEG: bad marker")
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return "jpeg", w, h
            i += 2 + seg_len
        raise ImageError("invalid_image", "corrupt JPEG: no frame header")
    raise ImageError("unsupported_image", "images must be JPEG or PNG")


def decode_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """JPEG/PNG bytes → [H, W, 3] uint8 BGR. Raises ImageError (image_too_large, unsupported_image, invalid_image)."""
    import cv2

    if len(data) > max_bytes:
        raise ImageError("image_too_large", f"an image may be at most {max_bytes} bytes; got {len(data)}")
    fmt, w, h = image_size(data)
    if w == 0 or h == 0:
        raise ImageError("invalid_image", f"{fmt} header says {w}x{h}")
    if w * h > max_pixels:
        raise ImageError("image_too_large", f"{w}x{h} pixels is over the limit of {max_pixels}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError("invalid_image", f"the {fmt} data could not be decoded")
    return img
