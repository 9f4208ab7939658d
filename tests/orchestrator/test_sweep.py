"""Sweeps on a real two-node Ray cluster (ray.cluster_utils.Cluster), DeepSpeed ZeRO-2 on CPU."""

from __future__ import annotations

import io
import math

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from typer.testing import CliRunner

from scalelab.orchestrator.plan import SweepError, plan_sweep
from scalelab.orchestrator.reports import RUNS_SCHEMA
from scalelab.orchestrator.scaling.query import query
from scalelab.orchestrator.sweep import run_sweep
from scalelab.orchestrator.sweep_config import load_sweep_config
from scalelab.pipelines.stats import read_stats
from scalelab.cli import app
from scalelab.training.config import REPO
from scalelab.training.data import Corpus
from scalelab.training.model import ModelConfig
from scalelab.training.model_sizes import count_params

SWEEP = REPO / "configs" / "sweep" / "sample.yaml"


@pytest.fixture(scope="module")
def cluster():
    """Two nodes of 2 CPUs: one run of 2 workers fits on either, two runs go at once."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    c.add_node(num_cpus=2)
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    yield c
    ray.shutdown()
    c.shutdown()


def sweep_config(corpus, out, *overrides):
    return load_sweep_config(SWEEP, [
        f"corpus={corpus}", f"output={out}", "scales=[20k, 40k, 80k]",
        "models=[nano, {name: pico, n_layer: 1, n_head: 2, d_model: 32}]",
        "train.checkpoint={every_steps: 4, keep: 1}", "train.eval={every_steps: 5, tokens: 4k}",
        "resources.cpus_per_worker=1", *overrides])


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def swept(cluster, sample_corpus, tmp_path_factory):
    """3 scales × 2 models on the two-node cluster, with one run failing once at step 6 on purpose."""
    tmp = tmp_path_factory.mktemp("swept")
    cfg = sweep_config(sample_corpus, tmp / "sweep")
    runs = plan_sweep(cfg)
    faulty = next(r for r in runs if r.scale == "40k" and r.model == "nano")
    env = {"SCALELAB_FAULT_AT_STEP": "6", "SCALELAB_FAULT_RUN": faulty.run_id,
           "SCALELAB_FAULT_MARKER": str(tmp / "fault-fired")}
    result = run_sweep(cfg, console=quiet(), worker_env=env)
    return cfg, runs, faulty, result, tmp


def test_sweep_on_two_nodes_retries_a_fault_and_skips_when_rerun(swept, sample_corpus):
    cfg, runs, faulty, result, tmp_path = swept
    assert (tmp_path / "fault-fired").exists()  # the fault did happen
    assert result.failed == [] and result.concurrency == 2
    assert {s.status for s in result.runs} == {"complete"}

    table = pq.read_table(tmp_path / "sweep" / "runs.parquet")
    assert table.schema.equals(RUNS_SCHEMA)
    rows = {r["run_id"]: r for r in table.to_pylist()}
    assert set(rows) == {r.run_id for r in runs} and len(rows) == 6
    manifest = Corpus(sample_corpus).manifest
    for spec in runs:
        row = rows[spec.run_id]
        assert row["unique_tokens"] == manifest.scales[spec.scale].tokens
        shape = {"nano": (2, 2, 64, 256), "pico": (1, 2, 32, 128)}[spec.model]
        n = count_params(ModelConfig(*shape[:3], vocab_size=4096, context=shape[3]))
        assert (row["params"], row["params_non_embedding"]) == (n["total"], n["non_embedding"])
        assert row["world_size"] == 2 and row["zero_stage"] == 2 and row["status"] == "complete"
        assert row["tokens_seen"] == row["planned_tokens"] and row["final_val_loss"] < 8.3
        assert row["attempts"] == (2 if spec.run_id == faulty.run_id else 1)
    curves = pq.read_table(tmp_path / "sweep" / "curves.parquet").to_pylist()
    for spec in runs:
        steps = [c["step"] for c in curves if c["run_id"] == spec.run_id]
        assert steps == list(range(1, spec.steps + 1))  # the retried run has no gaps or repeats

    # The faulted run, retried from its step-4 checkpoint, ends exactly where an undisturbed one does.
    clean = run_sweep(sweep_config(sample_corpus, tmp_path / "clean", "scales=[40k]", "models=[nano]"),
                      console=quiet())
    (undisturbed,) = clean.runs
    assert undisturbed.spec.run_id == faulty.run_id and undisturbed.attempts == 1
    assert undisturbed.summary["final_val_loss"] == rows[faulty.run_id]["final_val_loss"]
    clean_curve = pq.read_table(tmp_path / "clean" / "curves.parquet").column("train_loss").to_pylist()
    assert clean_curve == [c["train_loss"] for c in curves if c["run_id"] == faulty.run_id]

    # A second invocation finds every run complete and trains nothing.
    again = run_sweep(cfg, console=quiet())
    assert all(s.skipped and s.status == "complete" for s in again.runs)
    assert [s.attempts for s in again.runs] == [rows[s.spec.run_id]["attempts"] for s in again.runs]
    assert pq.read_table(tmp_path / "sweep" / "runs.parquet").to_pylist() == table.to_pylist()


def test_query_and_report_over_the_sweep(swept, sample_corpus):
    _, runs, _, _, tmp_path = swept
    reports = tmp_path / "sweep"
    table = query("SELECT model, unique_tokens, final_val_loss FROM runs ORDER BY model, unique_tokens", reports)
    assert table.num_rows == 6 and table.column("unique_tokens").to_pylist() == [20_000, 40_000, 80_000] * 2
    steps = query("SELECT run_id, count(*) AS n FROM curves GROUP BY run_id", reports).to_pylist()
    assert {r["run_id"]: r["n"] for r in steps} == {r.run_id: r.steps for r in runs}
    dropped = query("SELECT sum(documents) AS d FROM stats", reports).column("d")[0].as_py()
    assert dropped == read_stats(sample_corpus).documents_dropped  # the corpus's drop table

    res = CliRunner().invoke(app, ["report", str(reports), "--bootstrap", "20"])
    assert res.exit_code == 0, res.output
    assert "L(D) at N = 100,096" in res.output and "report.html" in res.output
    html = (reports / "report.html").read_text()
    for name in ("loss_vs_data", "loss_curves", "chinchilla_contours"):
        png = reports / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f'src="plots/{name}.png"' in html
    fits = query("SELECT law, params, constant, value FROM fits WHERE law = 'data' AND constant = 'beta'", reports)
    assert fits.num_rows == 2 and all(math.isfinite(v) for v in fits.column("value").to_pylist())

    res = CliRunner().invoke(app, ["query", "SELECT count(*) AS n FROM runs", "--reports", str(reports),
                                   "--format", "json"])
    assert res.exit_code == 0 and '"n": 6' in res.output
    res = CliRunner().invoke(app, ["query", "SELECT nope FROM runs", "--reports", str(reports)])
    assert res.exit_code == 2 and "nope" in res.output


def test_errors_before_anything_starts(cluster, sample_corpus, tmp_path):
    with pytest.raises(SweepError, match=r"scales: '9M' not in .*manifest.json, which has 20k, 40k, 80k, 150k"):
        run_sweep(sweep_config(sample_corpus, tmp_path / "a", "scales=[20k, 9M]"), console=quiet())
    with pytest.raises(SweepError, match="resources.workers: a run needs 3 workers of 2 CPU each; "
                                         "this cluster can place at most 2 at once"):
        run_sweep(sweep_config(sample_corpus, tmp_path / "b", "resources.workers=3", "resources.cpus_per_worker=2"),
                  console=quiet())
    with pytest.raises(SweepError, match=r"train_batch_size: 5, but micro_batch_size 4 × grad_accum 1 × 2 processes gives 8"):
        (tmp_path / "ds.json").write_text('{"train_batch_size": 5}')
        run_sweep(sweep_config(sample_corpus, tmp_path / "c", f"deepspeed={tmp_path / 'ds.json'}"), console=quiet())
    for name in ("a", "b", "c"):
        assert not (tmp_path / name / "runs.parquet").exists()


def test_deepspeed_launcher_backend_runs_one_tiny_run(sample_corpus, tmp_path):
    (tmp_path / "hostfile").write_text("# this machine, two processes\nlocalhost slots=2\n")
    cfg = sweep_config(sample_corpus, tmp_path / "ds", "scales=[20k]", "models=[{name: pico, n_layer: 1, n_head: 2, d_model: 32}]")
    result = run_sweep(cfg, backend="deepspeed", hostfile=str(tmp_path / "hostfile"), console=quiet())
    (run,) = result.runs
    assert run.status == "complete", run.error
    assert run.summary["world_size"] == 2 and run.summary["tokens_seen"] == run.spec.tokens
    row = pq.read_table(tmp_path / "ds" / "runs.parquet").to_pylist()[0]
    assert row["status"] == "complete" and row["attempts"] == 1
    with pytest.raises(SweepError, match="resources.workers is 2 but .* gives 3 slots"):
        (tmp_path / "hostfile3").write_text("localhost slots=3\n")
        run_sweep(cfg, backend="deepspeed", hostfile=str(tmp_path / "hostfile3"), console=quiet())
