"""Numbers as the report, the model card and the logs print them ("n/a" when a metric was not measured)."""

from __future__ import annotations

import math


def pct(x: float | None, signed: bool = False) -> str:
    """0.977 → "97.7%" (``signed``: "+2.7%" for changes)."""
    if x is None or math.isnan(x):
        return "n/a"
    return f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%"


def num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def sci(x: float | None, digits: int = 1) -> str:
    """Small quantities such as KL in nats per token: 1.2e-08."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}e}"


def size(n: int | None) -> str:
    """Bytes in binary units: 7.1 GiB, 640 MiB, 12 KiB."""
    if n is None:
        return "n/a"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
