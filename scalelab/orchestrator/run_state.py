"""What a run folder says about a run: complete, started (resumable), or untouched; and its attempts."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from scalelab.training.metrics import read_summary

ATTEMPTS_FILE = "attempts.jsonl"


def completed_summary(run_dir: Path, run_id: str, config_hash: str) -> Optional[dict[str, Any]]:
    """The run's summary if it finished with exactly this config; None if it must (re)run."""
    summary = read_summary(run_dir)
    if summary and summary.get("status") == "complete" and summary.get("run_id") == run_id \
            and summary.get("config_hash") == config_hash:
        return summary
    return None


def record_attempt(run_dir: Path, backend: str) -> None:
    """One line per start of a run (first, restarts by Ray Train, re-invocations of the sweep)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ATTEMPTS_FILE, "a") as f:
        f.write(json.dumps({"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "backend": backend}) + "\n")


def attempts(run_dir: Path) -> int:
    path = run_dir / ATTEMPTS_FILE
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.is_file() else 0


def first_started_at(run_dir: Path) -> Optional[str]:
    """When the run's first attempt started (it persists across invocations of the sweep)."""
    path = run_dir / ATTEMPTS_FILE
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.strip():
            return json.loads(line)["started_at"]
    return None
