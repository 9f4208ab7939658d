"""A finished run's files, from the local folder it trained in to its folder in object storage.

A sweep whose output is `s3://...` trains each run in a local working folder (training memory-maps
its data and DeepSpeed checkpoints into a folder) and then publishes it: every file of the folder
(curves, model, checkpoints, config) is uploaded whole, one PUT each, and `summary.json` last, so
the run is complete in the bucket exactly when its summary is there. Ranks on other nodes wrote
their checkpoint shards on their own disks: each node's first worker uploads its node's files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from scalelab.core.storage import Location
from scalelab.training.config import TrainConfig
from scalelab.training.launch import RUN_CONFIG_FILE
from scalelab.training.metrics import PROGRESS_FILE, SUMMARY_FILE

# Not results: the live table's progress (local by nature) and the completion record (goes last).
HELD_BACK = {PROGRESS_FILE, SUMMARY_FILE}


def upload_files(work_dir: Path, home: Location) -> int:
    """Every file under `work_dir` but the held-back ones, to the same relative key under `home`."""
    count = 0
    for path in sorted(p for p in work_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(work_dir)
        if str(relative) in HELD_BACK:
            continue
        (home / relative.as_posix()).upload(str(path))
        count += 1
    return count


def upload_summary(work_dir: Path, home: Location, cfg: TrainConfig) -> None:
    """The run's config, then its summary: the object that makes the run complete in the bucket."""
    config = cfg.model_copy(update={"output": home.url}).model_dump(mode="json")
    (home / RUN_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (home / SUMMARY_FILE).upload(str(work_dir / SUMMARY_FILE))


def drop_work_dir(work_dir: Path) -> None:
    """Once published, the working folder (checkpoints: the model and optimizer state) only takes room."""
    shutil.rmtree(work_dir, ignore_errors=True)
