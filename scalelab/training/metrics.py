"""Per-step metrics (`curves.parquet`) and the one-row run summary (`summary.json`), written by rank 0.

The curve is rewritten whole (through a temporary name) at every checkpoint and at the end, so the
file on disk always ends at or after the latest checkpoint; on resume the rows past the checkpoint
are dropped, because those steps are trained again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.core.atomic import write_json, write_parquet

CURVE_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("step", pa.int64()),
    ("tokens_seen", pa.int64()),
    ("epochs", pa.float64()),
    ("train_loss", pa.float64()),
    ("val_loss", pa.float64()),      # nats per token; null except at evaluation steps
    ("val_bpb", pa.float64()),       # bits per UTF-8 byte, at the same steps
    ("lr", pa.float64()),
    ("grad_norm", pa.float64()),     # before clipping
    ("tokens_per_s", pa.float64()),  # all ranks together
    ("mfu", pa.float64()),           # null where the device's peak is unknown (CPUs)
])

CURVES_FILE = "curves.parquet"
SUMMARY_FILE = "summary.json"
PROGRESS_FILE = "progress.json"  # the latest logged step, for live tables of sweeps


class CurveLog:
    def __init__(self, folder: Path, run_id: str):
        self.path = Path(folder) / CURVES_FILE
        self.run_id = run_id
        self.rows: list[dict[str, Any]] = []

    def resume_at(self, step: int) -> None:
        """Keep the rows of steps up to `step` from an earlier attempt."""
        if self.path.is_file():
            table = pq.read_table(self.path)
            self.rows = [{"val_bpb": None, **r} for r in table.to_pylist() if r["step"] <= step]

    def append(self, **row: Any) -> None:
        self.rows.append({"run_id": self.run_id, "val_loss": None, "val_bpb": None, "mfu": None, **row})

    def set_validation(self, step: int, loss: float, bpb: Optional[float]) -> None:
        for row in reversed(self.rows):
            if row["step"] == step:
                row["val_loss"], row["val_bpb"] = loss, bpb
                return

    def write(self) -> None:
        table = pa.Table.from_pylist(self.rows, schema=CURVE_SCHEMA)
        write_parquet(self.path, table)

    def val_losses(self) -> list[float]:
        return [r["val_loss"] for r in self.rows if r["val_loss"] is not None]


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    write_json(Path(folder) / SUMMARY_FILE, summary, indent=2)


def write_progress(folder: Path, progress: dict[str, Any]) -> None:
    write_json(Path(folder) / PROGRESS_FILE, progress)


def read_progress(folder: str | Path) -> Optional[dict[str, Any]]:
    path = Path(folder) / PROGRESS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_summary(folder: str | Path) -> Optional[dict[str, Any]]:
    path = Path(folder) / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None
