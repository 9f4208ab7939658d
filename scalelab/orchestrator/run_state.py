"""What a run folder says about a run: complete, started (resumable), or untouched; and its attempts.

The folder is a Location: the run folder itself, or for a sweep whose output is object storage the
run's folder in the bucket (a run is complete there once its summary.json is).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

from scalelab.core.storage import Location
from scalelab.training.metrics import SUMMARY_FILE

ATTEMPTS_FILE = "attempts.jsonl"

RunFolder = Union[str, Path, Location]


def completed_summary(run_dir: RunFolder, run_id: str, config_hash: str) -> Optional[dict[str, Any]]:
    """The run's summary if it finished with exactly this config; None if it must (re)run."""
    path = Location.of(run_dir) / SUMMARY_FILE
    summary = json.loads(path.read_text()) if path.is_file() else None
    if summary and summary.get("status") == "complete" and summary.get("run_id") == run_id \
            and summary.get("config_hash") == config_hash:
        return summary
    return None


def record_attempt(run_dir: RunFolder, backend: str) -> None:
    """One line per start of a run (first, restarts by Ray Train, re-invocations of the sweep)."""
    line = json.dumps({"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "backend": backend}) + "\n"
    folder = Location.of(run_dir)
    if folder.is_local:
        folder.mkdir()
        with open(folder.path / ATTEMPTS_FILE, "a") as f:
            f.write(line)
        return
    # An object can't be appended to: rewritten whole, by the run's rank 0 only (one writer).
    path = folder / ATTEMPTS_FILE
    path.write_text((path.read_text() if path.is_file() else "") + line)


def _lines(run_dir: RunFolder) -> list[str]:
    path = Location.of(run_dir) / ATTEMPTS_FILE
    return [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def attempts(run_dir: RunFolder) -> int:
    return len(_lines(run_dir))


def first_started_at(run_dir: RunFolder) -> Optional[str]:
    """When the run's first attempt started (it persists across invocations of the sweep)."""
    lines = _lines(run_dir)
    return json.loads(lines[0])["started_at"] if lines else None
