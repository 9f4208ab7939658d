"""`scalelab query` runs the user's SQL over the report tables only: every way to reach files,
extensions or settings fails with one clear line, and the legitimate queries still work."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from scalelab.orchestrator.scaling.query import QueryError, query
from scalelab.cli import app


@pytest.fixture()
def reports(tmp_path) -> Path:
    """A real report folder (runs, curves, sweep.json) beside a corpus's drop table and a private file."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    pq.write_table(pa.table({"run_id": ["a", "b"], "model": ["nano", "micro"], "unique_tokens": [20_000, 40_000],
                             "final_val_loss": [7.5, 7.1]}), folder / "runs.parquet")
    pq.write_table(pa.table({"run_id": ["a", "a", "b"], "step": [1, 2, 1], "train_loss": [9.0, 8.0, 8.5]}),
                   folder / "curves.parquet")
    corpus = tmp_path / "corpus"
    (corpus / "stats").mkdir(parents=True)
    pq.write_table(pa.table({"stage": ["read"], "reason": ["http_status"], "documents": [4], "bytes": [426]}),
                   corpus / "stats" / "drops.parquet")
    (folder / "sweep.json").write_text(json.dumps({"config": {"corpus": str(corpus)}}))
    (tmp_path / "secret.csv").write_text("user,password\nroot,hunter2\n")
    return folder


def test_legit_queries_read_every_table(reports):
    rows = query("SELECT model, final_val_loss FROM runs ORDER BY unique_tokens", reports).to_pylist()
    assert rows == [{"model": "nano", "final_val_loss": 7.5}, {"model": "micro", "final_val_loss": 7.1}]
    joined = query("SELECT r.model, count(*) AS n FROM curves c JOIN runs r USING (run_id) GROUP BY 1 ORDER BY 1",
                   reports).to_pylist()
    assert joined == [{"model": "micro", "n": 1}, {"model": "nano", "n": 2}]
    assert query("SELECT sum(documents) AS d FROM stats", reports).column("d").to_pylist() == [4]


ATTACKS = {
    "read_csv": "SELECT * FROM read_csv('{secret}')",
    "read_csv_auto": "SELECT * FROM read_csv_auto('{secret}')",
    "read_text": "SELECT content FROM read_text('{secret}')",
    "read_blob": "SELECT content FROM read_blob('{secret}')",
    "read_parquet": "SELECT * FROM read_parquet('{runs}')",
    "glob": "SELECT * FROM glob('{dir}/*')",
    "copy_to": "COPY runs TO '{dir}/secret.csv'",
    "copy_from": "COPY runs FROM '{secret}'",
    "export": "EXPORT DATABASE '{dir}/dump'",
    "attach": "ATTACH '{dir}/new.duckdb' AS other",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set_back_on": "SET enable_external_access = true",
    "reset": "RESET enable_external_access",
    "unlock": "SET lock_configuration = false",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_attack_fails_with_one_line_and_touches_nothing(reports, name):
    tmp = reports.parent
    before = {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file()}
    sql = ATTACKS[name].format(secret=tmp / "secret.csv", runs=reports / "runs.parquet", dir=tmp)
    with pytest.raises(QueryError) as err:
        query(sql, reports)
    message = str(err.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith(("query refused", "query failed"))
    # Nothing was written, created or changed anywhere near.
    assert {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file()} == before


def test_a_refused_read_says_why(reports):
    with pytest.raises(QueryError, match=r"^query refused: it reaches outside the report tables .*"
                                         r"file system operations are disabled"):
        query(f"SELECT * FROM read_csv('{reports.parent / 'secret.csv'}')", reports)


def test_changing_the_tables_changes_no_file(reports):
    before = (reports / "runs.parquet").read_bytes()
    query("DROP TABLE runs", reports)  # the in-memory copy only
    assert (reports / "runs.parquet").read_bytes() == before
    assert query("SELECT count(*) AS n FROM runs", reports).column("n").to_pylist() == [2]


def test_cli_prints_one_line_and_still_writes_with_out(reports, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["query", f"SELECT * FROM read_text('{tmp_path / 'secret.csv'}')", "--reports", str(reports)])
    assert res.exit_code == 2 and "hunter2" not in res.output
    assert res.output.strip().startswith("error: query refused")
    assert len(res.output.strip().splitlines()) == 1
    out = tmp_path / "runs.csv"
    res = runner.invoke(app, ["query", "SELECT model FROM runs ORDER BY model", "--reports", str(reports),
                              "--format", "csv", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert [line.strip('"') for line in out.read_text().splitlines()] == ["model", "micro", "nano"]


def test_a_broken_sweep_record_names_the_file(reports):
    (reports / "sweep.json").write_text("{not json")
    with pytest.raises(QueryError, match=r"sweep.json: not a sweep record"):
        query("SELECT 1", reports)
