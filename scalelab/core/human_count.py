"""Counts as people read them: 378624 -> "379k", 1.3e9 -> "1.3B" (tables, plots, the answer in words)."""

from __future__ import annotations


def human_count(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}"
