"""Small helpers every benchmark prints with: median and p95 of a sample, one line per measured quantity."""

from __future__ import annotations

import os
import platform

import numpy as np


def summarize(values: list[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(np.median(arr)), float(np.percentile(arr, 95))


def row(name: str, values: list[float], unit: str = "ms", what: str = "") -> str:
    med, p95 = summarize(values)
    return f"{name:<34} median {med:9.2f} {unit}   p95 {p95:9.2f} {unit}   n={len(values):<4} {what}"


def machine() -> str:
    load = os.getloadavg()
    return (
        f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
        f"load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
