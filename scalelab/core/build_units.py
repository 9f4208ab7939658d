"""Phases of a build as units on disk, so a stopped build resumes where it stopped.

    OUT/phase/<phase>/plan.json           the phase's units (written once, before any unit runs)
    OUT/phase/<phase>/<unit>.started      a task began the unit (for `corpus status`)
    OUT/phase/<phase>/<unit>.stats.parquet  the unit's share of the accounting
    OUT/phase/<phase>/<unit>.done.json    written last, by the task itself, after every output of
                                          the unit is in place (each through a temporary name)

A unit is done exactly when its done record exists, so a driver or worker killed at any moment
leaves either a finished unit or one that runs again from scratch; temporary files of a killed
unit are never read. A phase is complete when every unit of its plan is done.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pyarrow as pa
import ray

from scalelab.core.atomic import write_json, write_parquet
from scalelab.core.storage import Location, read_parquet

PHASE_ROOT = "phase"
# The build's phases in order; `corpus status` lists them so.
PHASES = ("process", "exact_dedup", "near_find", "near_rewrite", "tokenizer", "tokenize", "shards")


class BuildError(RuntimeError):
    """A build that cannot go on (a unit failed for good, inputs changed); completed units are kept."""

def write_record(path: Path | Location, value: Any) -> None:
    """A plan or done record: sorted keys, so the same record is the same bytes."""
    write_json(path, value, indent=1, sort_keys=True)


class Phase:
    def __init__(self, out_dir: str | Path | Location, name: str):
        self.name = name
        # Absolute: the paths go to Ray workers, whose working directory is not the driver's.
        self.dir = Location.of(out_dir).resolve() / PHASE_ROOT / name

    # -- the plan ------------------------------------------------------------------------------
    def plan(self) -> Optional[dict[str, Any]]:
        path = self.dir / "plan.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def ensure_plan(self, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The phase's plan: read if it exists (a resumed build keeps its first plan), else made and saved."""
        plan = self.plan()
        if plan is None:
            plan = make()
            write_record(self.dir / "plan.json", plan)
        return plan

    # -- units ---------------------------------------------------------------------------------
    def done_path(self, unit: str) -> Location:
        return self.dir / f"{unit}.done.json"

    def is_done(self, unit: str) -> bool:
        return self.done_path(unit).is_file()

    def done_record(self, unit: str) -> dict[str, Any]:
        return json.loads(self.done_path(unit).read_text())

    def output(self, unit: str, suffix: str = ".parquet") -> Location:
        return self.dir / f"{unit}{suffix}"

    def mark_started(self, unit: str) -> None:
        self.dir.mkdir()
        (self.dir / f"{unit}.started").write_text(f"{socket.gethostname()} {os.getpid()} {time.time():.3f}\n")

    def finish(self, unit: str, stat_rows: Optional[pa.Table] = None, **record: Any) -> None:
        """The unit's accounting, then its done record: the last write of a unit."""
        if stat_rows is not None:
            write_parquet(self.output(unit, ".stats.parquet"), stat_rows)
        write_record(self.done_path(unit), {"unit": unit, "finished": time.time(), **record})
        (self.dir / f"{unit}.started").unlink(missing_ok=True)

    def stat_rows(self, units: list[str]) -> list[pa.Table]:
        return [read_parquet(p) for u in units if (p := self.output(u, ".stats.parquet")).is_file()]

    def units(self) -> list[str]:
        plan = self.plan()
        return [] if plan is None else [u["name"] for u in plan["units"]]

    def _units_with(self, suffix: str) -> set[str]:
        """The units that have a `UNIT<suffix>` record: one listing (not one request per unit on object storage)."""
        return {f.name[: -len(suffix)] for f in self.dir.glob(f"*{suffix}")}

    def pending(self) -> list[dict[str, Any]]:
        plan = self.plan() or {"units": []}
        done = self._units_with(".done.json")
        return [u for u in plan["units"] if u["name"] not in done]

    def complete(self) -> bool:
        return self.plan() is not None and not self.pending()

    def counts(self) -> dict[str, int]:
        names = self.units()
        done_units, started_units = self._units_with(".done.json"), self._units_with(".started")
        done = sum(u in done_units for u in names)
        started = sum(u in started_units and u not in done_units for u in names)
        return {"units": len(names), "done": done, "started": started, "left": len(names) - done - started}


def run_units(phase: Phase, submit: Callable[[dict[str, Any]], Any], log: Callable[[str], None],
              max_in_flight: Optional[int] = None) -> int:
    """Run the phase's pending units as Ray tasks (`submit(unit)` returns an ObjectRef) and wait.

    Returns how many units were already done. A task that fails after Ray's retries (a worker that
    died is retried; an exception in our code is not: it would fail again) stops the build with
    the unit named; the units finished so far stay done.
    """
    pending = phase.pending()
    skipped = len(phase.units()) - len(pending)
    if skipped:
        log(f"{phase.name}: {skipped} of {len(phase.units())} units already done, skipped")
    waiting = list(pending)
    refs: dict[Any, str] = {}
    while waiting or refs:
        while waiting and (max_in_flight is None or len(refs) < max_in_flight):
            unit = waiting.pop(0)
            refs[submit(unit)] = unit["name"]
        ready, _ = ray.wait(list(refs), num_returns=1)
        name = refs.pop(ready[0])
        try:
            ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            for r in refs:
                ray.cancel(r)
            cause = getattr(exc, "cause", None) or exc
            raise BuildError(f"{phase.name} unit {name} failed: {type(cause).__name__}: {cause}; the "
                             f"{len(phase.units()) - len(phase.pending())} finished units are kept, rerun to continue") from None
    return skipped
