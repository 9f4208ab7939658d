"""Learning-rate schedule: linear warmup, then cosine (or linear, or no) decay to min_lr_ratio × lr."""

from __future__ import annotations

import math
from typing import Callable

from scalelab.training.config import ScheduleSpec


def warmup_steps(spec: ScheduleSpec, total_steps: int, tokens_per_step: int = 1) -> int:
    if spec.warmup_steps is not None:
        return min(spec.warmup_steps, total_steps)
    if spec.warmup_tokens is not None:
        return min(math.ceil(spec.warmup_tokens / tokens_per_step), total_steps)
    return int(round(spec.warmup_fraction * total_steps))


def lr_multiplier(spec: ScheduleSpec, total_steps: int, tokens_per_step: int = 1) -> Callable[[int], float]:
    """f(i): the factor on the peak lr for optimizer step i + 1 (i = 0 for the first step)."""
    warmup = warmup_steps(spec, total_steps, tokens_per_step)
    floor = spec.min_lr_ratio

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        if spec.decay == "constant" or total_steps <= warmup:
            return 1.0
        progress = min(1.0, (i - warmup) / max(1, total_steps - warmup - 1))
        if spec.decay == "linear":
            return 1.0 - (1.0 - floor) * progress
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
