"""A sweep's report folder: `runs.parquet` (a row per run) and `curves.parquet` (every run's steps).

Both are rewritten whole, through a temporary name, whenever a run changes state, so a reader
(DuckDB, pandas, `scalelab query`) always sees a complete file. Runs write their own metrics into
their run folders (Ray Train keeps only checkpoint-attached metrics); the reports gather them.
Folders are Locations: the report folder and the run folders may be in object storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import pyarrow as pa

from scalelab.core.atomic import write_parquet
from scalelab.core.storage import Location, read_parquet
from scalelab.training.families import OBJECTIVES
from scalelab.training.metrics import CURVE_SCHEMA, CURVES_FILE

RUNS_FILE = "runs.parquet"

RUNS_SCHEMA = pa.schema([
    # The sweep's view of the run.
    ("sweep", pa.string()),
    ("run_id", pa.string()),
    ("status", pa.string()),            # pending, running, complete, failed
    ("attempts", pa.int64()),           # starts, restarts after failures included
    ("started_at", pa.string()),        # ISO 8601, UTC
    ("finished_at", pa.string()),
    ("error", pa.string()),             # the last failure's message, for failed runs
    ("scale", pa.string()),
    ("model", pa.string()),
    ("family", pa.string()),            # gpt, bert or lstm
    ("objective", pa.string()),         # causal_lm, or masked_lm (BERT: losses over the selected tokens only)
    ("seed", pa.int64()),
    ("run_dir", pa.string()),
    # The plan.
    ("unique_tokens", pa.int64()),      # D: the scale's distinct tokens
    ("params", pa.int64()),             # N: all parameters
    ("params_non_embedding", pa.int64()),  # Kaplan's N
    ("planned_tokens", pa.int64()),
    ("planned_steps", pa.int64()),
    ("flops_budget", pa.float64()),     # C of an IsoFLOP run (tokens.policy isoflop); null otherwise
    # The run's summary.json (null until complete).
    ("tokens_seen", pa.int64()),
    ("epochs", pa.float64()),
    ("steps", pa.int64()),
    ("final_val_loss", pa.float64()),   # nats per token
    ("best_val_loss", pa.float64()),
    ("final_val_bpb", pa.float64()),    # bits per UTF-8 byte of the validation text
    ("best_val_bpb", pa.float64()),     # what the fits use (the early-stopped run's best)
    ("final_train_loss", pa.float64()),
    ("val_tokens", pa.int64()),
    ("val_bytes", pa.float64()),
    ("converged", pa.bool_()),          # false: validation loss still improved > 1% over the last 10% of steps
    ("last_window_improvement", pa.float64()),
    ("stopped_by", pa.string()),        # early_stop, cap (early stop never fired) or length (fixed length)
    ("flops", pa.float64()),
    ("wall_time_s", pa.float64()),
    ("tokens_per_s", pa.float64()),
    ("world_size", pa.int64()),
    ("zero_stage", pa.int64()),
    ("precision", pa.string()),
    ("n_layer", pa.int64()),
    ("n_head", pa.int64()),
    ("d_model", pa.int64()),
    ("seq_len", pa.int64()),
    ("config_hash", pa.string()),
    ("manifest_sha256", pa.string()),
    ("scalelab_version", pa.string()),
    ("git_revision", pa.string()),
])


def run_row(sweep: str, spec, status: str, attempts: int, started_at: Optional[str], finished_at: Optional[str],
            error: Optional[str], summary: Optional[dict[str, Any]]) -> dict[str, Any]:
    row = {name: None for name in RUNS_SCHEMA.names}
    summary = summary or {}
    row.update({k: summary.get(k) for k in RUNS_SCHEMA.names if k in summary})
    row.update(sweep=sweep, run_id=spec.run_id, status=status, attempts=attempts, started_at=started_at,
               finished_at=finished_at or summary.get("finished_at"), error=error, scale=spec.scale,
               model=spec.model, family=spec.config.model.family,
               objective=OBJECTIVES[spec.config.model.family], seed=spec.seed, run_dir=str(spec.home), unique_tokens=spec.unique_tokens,
               params=spec.params, params_non_embedding=spec.params_non_embedding,
               planned_tokens=spec.tokens, planned_steps=spec.steps, flops_budget=spec.budget_flops)
    return row


def write_runs(out_dir: Path | Location, rows: list[dict[str, Any]]) -> Location:
    path = Location.of(out_dir) / RUNS_FILE
    write_parquet(path, pa.Table.from_pylist(rows, schema=RUNS_SCHEMA))
    return path


def _curve_table(path: Location) -> pa.Table:
    """A run's curves in today's schema; columns an older run didn't write are null."""
    table = read_parquet(path)
    for f in CURVE_SCHEMA:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(CURVE_SCHEMA.names).cast(CURVE_SCHEMA)


def write_curves(out_dir: Path | Location, run_dirs: Sequence[Path | Location]) -> Location:
    files = [Location.of(d) / CURVES_FILE for d in run_dirs]
    tables = [_curve_table(f) for f in files if f.is_file()]
    table = pa.concat_tables(tables) if tables else CURVE_SCHEMA.empty_table()
    path = Location.of(out_dir) / CURVES_FILE
    write_parquet(path, table)
    return path
