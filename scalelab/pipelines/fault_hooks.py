"""Test hooks that make a build or a crawl fail the way clusters do, at a chosen unit of work.

SCALELAB_PIPELINE_FAULT="STAGE:UNIT:KIND", KIND one of
  kill    the worker process SIGKILLs itself (as a node dying or the OOM killer would) at the
          hook's place: a build unit after writing its output under its temporary name, before
          the rename; a crawl actor ("crawl:actor-AAA-batch-N") after writing its batch's WARC
          records, before the driver commits them
  enospc  the write fails with "No space left on device"
SCALELAB_PIPELINE_FAULT_MARKER=PATH makes the fault fire once: it is created when the fault fires,
and an existing marker disarms it (so Ray's retry of the unit succeeds).
The variables reach Ray workers through the runtime env (`scalelab.core.ray_session.fault_hook_env`).
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "SCALELAB_PIPELINE_FAULT"
MARKER_ENV = "SCALELAB_PIPELINE_FAULT_MARKER"


def maybe_fail(phase: str, unit: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    want_phase, want_unit, kind = spec.split(":")
    if (want_phase, want_unit) != (phase, unit):
        return
    marker = os.environ.get(MARKER_ENV)
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(f"{phase}:{unit}:{kind} pid {os.getpid()}\n")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), unit)
