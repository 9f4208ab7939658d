"""SQL over a sweep's reports with DuckDB: views `runs`, `curves`, `fits`, `isoflop` and the corpus's `stats`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa


class QueryError(ValueError):
    pass


def views(report_dir: str | Path) -> dict[str, Path]:
    """View name -> Parquet file, for the files this report folder has."""
    report_dir = Path(report_dir)
    found = {name: report_dir / f"{name}.parquet" for name in ("runs", "curves", "fits", "isoflop")}
    sweep = report_dir / "sweep.json"
    if sweep.is_file():  # the corpus's drop table, where the sweep's corpus can be found
        corpus = Path(json.loads(sweep.read_text())["config"]["corpus"]).expanduser()
        found["stats"] = corpus / "stats" / "drops.parquet"
    return {name: path for name, path in found.items() if path.is_file()}


def query(sql: str, report_dir: str | Path) -> pa.Table:
    """Run `sql` with the report's views defined; return an Arrow table."""
    import duckdb

    available = views(report_dir)
    if "runs" not in available:
        raise QueryError(f"{report_dir}: no runs.parquet (is it a sweep's report folder?)")
    con = duckdb.connect()
    try:
        for name, path in available.items():
            quoted = str(path).replace("'", "''")  # views can't take prepared parameters
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{quoted}')")
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from None
    finally:
        con.close()
