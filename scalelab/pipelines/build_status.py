"""`scalelab corpus status OUT`: which phases of a build are done, and how many units are done,
started (running, or cut short by a stop) and left."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from scalelab.core.build_units import PHASE_ROOT, PHASES, Phase
from scalelab.core.storage import Location

DRIVER = "driver.json"     # written when a build starts: who runs it
FINISHED = "finished.json"  # written when a build ends


def _driver_alive(record: dict[str, Any]) -> bool | None:
    """Whether the build's driver process still runs; None when it ran on another machine."""
    if record.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(record["pid"]), 0)
        return True
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True


def build_status(out: str | Path | Location) -> dict[str, Any]:
    out = Location.of(out)
    root = out / PHASE_ROOT
    if not root.is_dir():
        raise FileNotFoundError(f"{out}: not a corpus build (no {PHASE_ROOT}/ folder)")
    phases = []
    for name in PHASES:
        phase = Phase(out, name)
        if phase.plan() is None:
            phases.append({"phase": name, "state": "not started", "units": None, "done": 0, "started": 0, "left": None})
            continue
        c = phase.counts()
        state = "done" if c["done"] == c["units"] else ("in progress" if c["done"] or c["started"] else "waiting")
        phases.append({"phase": name, "state": state, **c})
    if (root / FINISHED).is_file():
        overall = "finished"
    elif (root / DRIVER).is_file():
        driver = json.loads((root / DRIVER).read_text())
        alive = _driver_alive(driver)
        overall = {True: f"running (pid {driver['pid']})", False: "stopped: rerun the same command to resume",
                   None: f"running or stopped (driver on {driver['host']})"}[alive]
    else:
        overall = "stopped: rerun the same command to resume"
    return {"out": str(out), "state": overall, "phases": phases}


def stopped_build_message(out: Path | Location) -> str:
    """One line for a build stopped by Ctrl-C: the phase it stopped in, and how to go on."""
    try:
        phases = build_status(out)["phases"]
    except FileNotFoundError:
        return f"stopped before the build of {out} began; rerun the same command to start it"
    current = next((s for s in phases if s["state"] != "done"), None)
    if current is None:
        where = "after its last phase"
    elif current["units"] is None:
        where = f"before phase {current['phase']}"
    else:
        where = f"in phase {current['phase']} ({current['done']} of {current['units']} units done)"
    return f"stopped {where} in {out}; rerun the same command to resume (finished units are kept)"
