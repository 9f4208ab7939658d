"""`scalelab query`: DuckDB SQL over a sweep's reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import typer

from scalelab.cli.common import console, fail, print_table

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.


def query(
    sql: str = typer.Argument(..., help="SQL over the tables runs, curves, fits and stats (no file access)."),
    reports: Path = typer.Option(Path("out/sweeps/demo"), "--reports", help="A sweep's report folder."),
    format: str = typer.Option("table", "--format", help="table, csv, json or parquet."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write here instead of printing (needed for parquet)."),
) -> None:
    """Run DuckDB SQL over a sweep's reports: `scalelab query "SELECT model, unique_tokens, final_val_loss FROM runs"`."""
    from scalelab.orchestrator.scaling.query import QueryError, query

    if format not in ("table", "csv", "json", "parquet"):
        fail(f"--format {format}: must be table, csv, json or parquet")
    if format == "parquet" and out is None:
        fail("--format parquet needs --out FILE")
    try:
        table = query(sql, reports)
    except QueryError as exc:
        fail(str(exc))
        return
    if format == "table":
        print_table(table)
        return
    if format == "parquet":
        pq.write_table(table, out)
    elif format == "csv":
        if out is None:
            pcsv.write_csv(table, sys.stdout.buffer)
        else:
            pcsv.write_csv(table, out)
    else:
        text = json.dumps(table.to_pylist(), indent=1, default=str)
        if out is None:
            print(text)
        else:
            out.write_text(text + "\n")
    if out is not None:
        console.print(f"wrote {table.num_rows} rows to {out}")
