"""SQL over a sweep's reports with DuckDB: tables `runs`, `curves`, `fits`, `isoflop` and the corpus's `stats`.

The user's SQL runs in a sandbox: the report files are loaded into the in-memory database first,
then DuckDB's file system, extensions and settings are switched off and locked. A query can read
those tables and nothing else: no read_csv('/etc/passwd'), no COPY ... TO a file, no ATTACH, no
INSTALL/LOAD, no SET to undo it. Results leave only through `scalelab query --out/--format`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

# Applied in this order once the tables are loaded; lock_configuration last, so no SET undoes them.
SANDBOX_SETTINGS = (
    "SET enable_external_access = false",
    "SET python_enable_replacements = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_persistent_secrets = false",
    "SET lock_configuration = true",
)


class QueryError(ValueError):
    pass


def _corpus_of(sweep_json: Path) -> Path:
    try:
        return Path(json.loads(sweep_json.read_text())["config"]["corpus"]).expanduser()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QueryError(f"{sweep_json}: not a sweep record ({type(exc).__name__}: {exc})") from None


def views(report_dir: str | Path) -> dict[str, Path]:
    """Table name -> Parquet file, for the files this report folder has."""
    report_dir = Path(report_dir)
    found = {name: report_dir / f"{name}.parquet" for name in ("runs", "curves", "fits", "isoflop")}
    sweep = report_dir / "sweep.json"
    if sweep.is_file():  # the corpus's drop table, where the sweep's corpus can be found
        found["stats"] = _corpus_of(sweep) / "stats" / "drops.parquet"
    return {name: path for name, path in found.items() if path.is_file()}


def _load_tables(con, available: dict[str, Path]) -> None:
    import duckdb

    for name, path in available.items():
        quoted = str(path).replace("'", "''")  # DDL can't take prepared parameters
        try:
            # Materialized, not a view: a view over read_parquet would need file access at query time.
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{quoted}')")
        except duckdb.Error as exc:
            raise QueryError(f"{path}: cannot read it as Parquet: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def sandboxed_connection(available: dict[str, Path]):
    """An in-memory DuckDB holding the report tables, with every way out of it switched off."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        _load_tables(con, available)
        for setting in SANDBOX_SETTINGS:
            con.execute(setting)
    except BaseException:
        con.close()
        raise
    return con


def query(sql: str, report_dir: str | Path) -> pa.Table:
    """Run `sql` over the report's tables in the sandbox; return an Arrow table."""
    import duckdb

    available = views(report_dir)
    if "runs" not in available:
        raise QueryError(f"{report_dir}: no runs.parquet (is it a sweep's report folder?)")
    con = sandboxed_connection(available)
    try:
        result = con.sql(sql)
        if result is None:  # a statement, not a query: nothing to show, and nothing it may keep
            raise QueryError("the SQL returns no rows: scalelab query runs SELECT queries over "
                             f"{', '.join(sorted(available))}")
        return result.to_arrow_table()
    except duckdb.PermissionException as exc:
        raise QueryError(f"query refused: it reaches outside the report tables ({_first_line(exc)}); "
                         "scalelab query reads only runs, curves, fits and stats, and writes only with --out") from None
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {_first_line(exc)}") from None
    finally:
        con.close()
