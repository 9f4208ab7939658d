"""A test-only fault hook: make a run fail at a chosen step, once, to exercise resume and retries.

`SCALELAB_FAULT_AT_STEP=k` raises after step k's checkpoint (if any) is written, on rank
`SCALELAB_FAULT_RANK` (default 0). With `SCALELAB_FAULT_MARKER=PATH` it fires only while PATH does
not exist and creates it, so a retried run passes the same step. `SCALELAB_FAULT_RUN=NAME` limits
it to the run of that name (a sweep's run id). Unset, it does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


class InjectedFault(RuntimeError):
    pass


def maybe_fail(step: int, rank: int, run_name: str) -> None:
    at = os.environ.get("SCALELAB_FAULT_AT_STEP")
    if not at or int(at) != step or int(os.environ.get("SCALELAB_FAULT_RANK", "0")) != rank:
        return
    if os.environ.get("SCALELAB_FAULT_RUN", run_name) != run_name:
        return
    marker = os.environ.get("SCALELAB_FAULT_MARKER")
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(f"failed at step {step}\n")
    raise InjectedFault(f"injected fault at step {step} on rank {rank} (SCALELAB_FAULT_AT_STEP)")
