"""A sweep whose corpus and output are in object storage, against a real S3 server on loopback
(tests/s3_server.py), real Ray Train and DeepSpeed ZeRO-2 on CPU: runs train in local working
folders and are published to OUTPUT/runs/<run_id>; the bucket alone says which runs are complete."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.core.config import ConfigError
from scalelab.core.output_folder import OutputFolderError
from scalelab.core.storage import Location, read_parquet
from scalelab.orchestrator.plan import SweepError
from scalelab.orchestrator.sweep import run_sweep
from tests.orchestrator.test_sweep import quiet, sweep_config
from tests.s3_server import local_s3
from tests.training.test_corpus_s3 import upload_corpus

PICO = "{name: pico, n_layer: 1, n_head: 2, d_model: 32}"


@pytest.fixture(scope="module")
def s3():
    with local_s3() as server:
        yield server


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The corpus's local copy and the runs' working folders; set before Ray starts, so workers see it."""
    saved = os.environ.get("SCALELAB_CACHE")
    os.environ["SCALELAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield os.environ["SCALELAB_CACHE"]
    if saved is None:
        os.environ.pop("SCALELAB_CACHE")
    else:
        os.environ["SCALELAB_CACHE"] = saved


@pytest.fixture(scope="module")
def corpus_url(s3, sample_corpus):
    return upload_corpus(s3, sample_corpus, "corpora/sample")


def s3_sweep(corpus_url, output):
    """Two tiny runs (one model, two scales), two at once on the 2 CPUs of the module's Ray."""
    return sweep_config(corpus_url, output, "scales=[20k, 40k]", f"models=[{PICO}]", "resources.cpus_per_worker=0.5")


@pytest.fixture(scope="module")
def swept(s3, cache, corpus_url, ray_local):
    cfg = s3_sweep(corpus_url, s3.url("sweeps/x"))
    return cfg, run_sweep(cfg, console=quiet())


def test_a_sweep_on_s3_publishes_every_run_and_its_reports(swept, s3, cache):
    cfg, result = swept
    assert result.failed == [] and {s.status for s in result.runs} == {"complete"}
    out = Location.of(s3.url("sweeps/x"))
    assert str(result.report_dir) == out.url
    assert json.loads((out / ".scalelab.json").read_text())["kinds"] == ["sweep"]
    assert json.loads((out / "sweep.json").read_text())["runs"] == [s.spec.run_id for s in result.runs]

    rows = {r["run_id"]: r for r in read_parquet(out / "runs.parquet").to_pylist()}
    assert set(rows) == {s.spec.run_id for s in result.runs}
    for state in result.runs:
        run_id, home = state.spec.run_id, out / "runs" / state.spec.run_id
        row = rows[run_id]
        assert row["status"] == "complete" and row["attempts"] == 1 and row["run_dir"] == home.url
        assert row["tokens_seen"] == row["planned_tokens"]
        summary = json.loads((home / "summary.json").read_text())
        assert summary["run_id"] == run_id and summary["final_val_loss"] == row["final_val_loss"]
        names = {f.name for f in home.files()}
        assert {"summary.json", "curves.parquet", "run_config.json", "attempts.jsonl", "model.pt"} <= names
        assert (home / "checkpoints" / "latest").is_file()
        assert json.loads((home / "run_config.json").read_text())["output"] == home.url
        assert read_parquet(home / "curves.parquet").column("step").to_pylist() == list(range(1, state.spec.steps + 1))
        # Published, the local working folder is gone; training happened under the cache.
        assert str(state.spec.run_dir).startswith(cache) and not state.spec.run_dir.exists()
    curves = read_parquet(out / "curves.parquet")
    assert curves.num_rows == sum(s.spec.steps for s in result.runs)


def test_report_and_query_read_the_bucket(swept, s3):
    out = Location.of(s3.url("sweeps/x"))
    res = CliRunner().invoke(app, ["report", out.url, "--bootstrap", "10"])
    assert res.exit_code == 0, res.output
    assert f"report: {out.url}/report.html" in res.output
    html = (out / "report.html").read_text()
    assert 'src="plots/loss_vs_data.png"' in html and "Scaling report: x" in html
    assert (out / "plots" / "loss_vs_data.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "fits.parquet").is_file() and (out / "fits.json").is_file()

    res = CliRunner().invoke(app, ["query", "SELECT count(*) AS n FROM runs WHERE status = 'complete'",
                                   "--reports", out.url, "--format", "json"])
    assert res.exit_code == 0 and '"n": 2' in res.output, res.output
    res = CliRunner().invoke(app, ["report", s3.url("sweeps/none")])
    assert res.exit_code == 2 and f"{s3.url('sweeps/none')}/runs.parquet: not found" in res.output


def test_a_rerun_skips_what_the_bucket_holds_complete_and_redoes_the_rest(swept, s3):
    cfg, first = swept
    out = Location.of(s3.url("sweeps/x"))
    again = run_sweep(cfg, console=quiet())
    assert all(s.skipped and s.status == "complete" and s.attempts == 1 for s in again.runs)

    # A run is complete only once its summary is in the bucket: without it, the run trains again.
    redo = min(first.runs, key=lambda s: s.spec.steps).spec
    (out / "runs" / redo.run_id / "summary.json").unlink()
    third = run_sweep(cfg, console=quiet())
    states = {s.spec.run_id: s for s in third.runs}
    assert not states[redo.run_id].skipped and states[redo.run_id].status == "complete"
    assert states[redo.run_id].attempts == 2
    assert all(s.skipped for rid, s in states.items() if rid != redo.run_id)
    rows = {r["run_id"]: r for r in read_parquet(out / "runs.parquet").to_pylist()}
    assert rows[redo.run_id]["status"] == "complete" and rows[redo.run_id]["attempts"] == 2


def test_the_claim_refuses_a_prefix_holding_foreign_objects(s3, cache, corpus_url, ray_local, tmp_path):
    (tmp_path / "notes.txt").write_text("the user's")
    s3.upload(tmp_path / "notes.txt", "sweeps/theirs/notes.txt")
    theirs = Location.of(s3.url("sweeps/theirs"))
    with pytest.raises(OutputFolderError, match=r"sweeps/theirs: is not empty and was not created by scalelab"):
        run_sweep(s3_sweep(corpus_url, theirs.url), console=quiet())
    assert [f.name for f in theirs.files()] == ["notes.txt"]  # nothing written, nothing removed

    with pytest.raises(SweepError, match="object-store outputs need --backend ray"):
        run_sweep(s3_sweep(corpus_url, s3.url("sweeps/ds")), backend="deepspeed", hostfile=str(tmp_path / "h"),
                  console=quiet())
    with pytest.raises(ConfigError, match="runs train in a folder on a filesystem"):
        sweep_config(corpus_url, s3.url("sweeps/y"), f"storage={s3.url('runs')}")
