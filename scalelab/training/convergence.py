"""Did a run converge? A run whose validation loss is still falling measures its length, not its data.

A run is `converged` unless its validation loss still improved by more than `tolerance` (relative)
over its last `window` fraction of steps: the loss at the last evaluation at or before the window's
start, against the best loss inside the window. A run with no evaluation before the window can't be
judged (None).
"""

from __future__ import annotations

from typing import Optional, Sequence

WINDOW = 0.10
TOLERANCE = 0.01


def last_window_improvement(evals: Sequence[tuple[int, float]], total_steps: int,
                            window: float = WINDOW) -> Optional[float]:
    """Relative improvement of the best loss in the last `window` of steps over the loss before it."""
    start = total_steps * (1.0 - window)
    before = [loss for step, loss in evals if step <= start]
    inside = [loss for step, loss in evals if step > start]
    if not before or not inside or before[-1] <= 0:
        return None
    return (before[-1] - min(inside)) / before[-1]


def converged(evals: Sequence[tuple[int, float]], total_steps: int, window: float = WINDOW,
              tolerance: float = TOLERANCE) -> Optional[bool]:
    improvement = last_window_improvement(evals, total_steps, window)
    return None if improvement is None else improvement <= tolerance
