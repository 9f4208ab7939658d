"""Test hooks that make a build fail the way clusters do, at a chosen unit.

SCALELAB_BUILD_FAULT="STAGE:UNIT:KIND", KIND one of
  kill    the worker process SIGKILLs itself after writing the unit's output under its
          temporary name (as a node dying or the OOM killer would), before the rename
  enospc  the unit's write fails with "No space left on device"
SCALELAB_BUILD_FAULT_MARKER=PATH makes the fault fire once: it is created when the fault fires,
and an existing marker disarms it (so Ray's retry of the unit succeeds).
On a cluster the variables reach the workers through the runtime env (`ensure_ray`).
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "SCALELAB_BUILD_FAULT"
MARKER_ENV = "SCALELAB_BUILD_FAULT_MARKER"


def maybe_fail(stage: str, unit: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    want_stage, want_unit, kind = spec.split(":")
    if (want_stage, want_unit) != (stage, unit):
        return
    marker = os.environ.get(MARKER_ENV)
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(f"{stage}:{unit}:{kind} pid {os.getpid()}\n")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), unit)
