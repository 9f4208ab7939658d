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
from scalelab.core.staged_folder import staged
from scalelab.core.storage import Location, is_url

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.


def query(
    sql: str = typer.Argument(..., help="SQL over the tables runs, curves, fits and stats (no file access)."),
    reports: str = typer.Option("out/sweeps/demo", "--reports", help="A sweep's report folder, or its URL (s3://...)."),
    format: str = typer.Option("table", "--format", help="table, csv, json or parquet."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write here instead of printing (needed for parquet)."),
) -> None:
    """Run DuckDB SQL over a sweep's reports: `scalelab query "SELECT model, unique_tokens, final_val_loss FROM runs"`."""
    from scalelab.orchestrator.scaling.query import QueryError

    if format not in ("table", "csv", "json", "parquet"):
        fail(f"--format {format}: must be table, csv, json or parquet")
    if format == "parquet" and out is None:
        fail("--format parquet needs --out FILE")
    try:
        table = _query(sql, reports)
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


def _query(sql: str, reports: str):
    """The query over a local folder, or over a local copy of a folder in object storage (read only)."""
    from scalelab.orchestrator.scaling.query import QueryError, query

    if not is_url(reports):
        return query(sql, Path(reports))
    where = Location.of(reports)
    try:
        with staged(where, write_back=False) as local:
            try:
                return query(sql, local)
            except QueryError as exc:
                raise QueryError(str(exc).replace(str(local), where.url)) from None
    except OSError as exc:
        raise QueryError(f"{where}: cannot read it ({exc})") from None
