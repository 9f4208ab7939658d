"""A sweep of two model families on one corpus (Ray Train, DeepSpeed ZeRO-2 on CPU): per-family
rows, and fits and plots made family by family, never mixing a masked-token loss into a causal fit."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.orchestrator.plan import plan_sweep
from scalelab.orchestrator.scaling.points import PointsError, load_points
from scalelab.orchestrator.scaling.report import make_report
from scalelab.orchestrator.sweep import run_sweep
from scalelab.orchestrator.sweep_config import load_sweep_config
from scalelab.training.config import REPO
from scalelab.training.model_sizes import count_params

SWEEP = REPO / "configs" / "sweep" / "sample.yaml"
PICO = "n_layer: 1, n_head: 2, d_model: 32, context: 128"


@pytest.fixture(scope="module")
def swept(ray_local, sample_corpus, tmp_path_factory):
    """3 scales × {a GPT, a BERT} of the same shape: 6 runs, two lanes of one-worker jobs."""
    out = tmp_path_factory.mktemp("families") / "sweep"
    cfg = load_sweep_config(SWEEP, [
        f"corpus={sample_corpus}", f"output={out}", "scales=[20k, 40k, 80k]",
        f"models=[{{name: gpt-pico, {PICO}}}, {{name: bert-pico, family: bert, {PICO}}}]",
        "train.checkpoint={every_steps: 1000, keep: 1}", "train.eval={every_steps: 5, tokens: 4k}",
        "resources.workers=1", "resources.cpus_per_worker=1", "pack_runs=true"])
    result = run_sweep(cfg, console=Console(file=io.StringIO(), width=200))
    return cfg, result, out


def test_two_families_train_in_one_sweep(swept):
    cfg, result, out = swept
    assert result.failed == [] and {s.status for s in result.runs} == {"complete"}
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert sorted((r["family"], r["objective"]) for r in rows) == [("bert", "masked_lm")] * 3 + [("gpt", "causal_lm")] * 3
    for spec in plan_sweep(cfg):
        row = next(r for r in rows if r["run_id"] == spec.run_id)
        n = count_params(spec.config.model.build(4096, 128))
        assert (row["params"], row["params_non_embedding"]) == (n["total"], n["non_embedding"])
    # The same shape: BERT has the MLM head and [MASK] besides the GPT's parameters.
    bert, gpt = (next(r for r in rows if r["family"] == f) for f in ("bert", "gpt"))
    assert bert["params_non_embedding"] > gpt["params_non_embedding"]
    assert bert["val_tokens"] < 0.2 * gpt["val_tokens"]  # the selected 15%


def test_a_fit_reads_one_family(swept):
    _, _, out = swept
    with pytest.raises(PointsError, match="runs of families bert, gpt: a fit reads one family"):
        load_points(out)
    bert = load_points(out, family="bert")
    assert bert.family == "bert" and len(bert) == 3 and any("masked-token loss" in n for n in bert.notes)
    with pytest.raises(PointsError, match="no runs of family lstm"):
        load_points(out, family="lstm")
    res = CliRunner().invoke(app, ["scaling", "fit", str(out), "--family", "gpt", "--bootstrap", "10"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["scaling", "fit", str(out), "--bootstrap", "10"])
    assert res.exit_code == 2 and "--family" in res.output


def test_report_fits_each_family_on_its_own(swept):
    _, _, out = swept
    rep = make_report(out, bootstrap=20)
    assert [f.family for f in rep.families] == ["bert", "gpt"]
    for fam in rep.families:
        runs = pq.read_table(out / "runs.parquet").to_pylist()
        mine = {r["run_id"] for r in runs if r["family"] == fam.family}
        assert set(fam.points.labels) <= mine and len(fam.points) >= 3  # never another family's runs
        (data_fit,) = fam.data_fits
        assert data_fit.family == fam.family and {r["label"] for r in data_fit.residuals} <= mine
        assert "beta" in data_fit.ci  # with its interval
    assert any(a.startswith("bert: ") for a in rep.answers) and any(a.startswith("gpt: ") for a in rep.answers)
    fits = pq.read_table(out / "fits.parquet").to_pylist()
    assert {(r["law"], r["family"]) for r in fits} == {("data", "bert"), ("data", "gpt")}
    doc = json.loads((out / "fits.json").read_text())
    assert sorted(f["family"] for f in doc["data"]) == ["bert", "gpt"]
    for name in ("families", "loss_vs_data_bert", "loss_vs_data_gpt", "loss_curves"):
        png = rep.plots[name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    html = rep.html.read_text()
    assert 'src="plots/families.png"' in html and "masked-token loss" in html

    # Refitting one family through the CLI keeps the other's rows.
    res = CliRunner().invoke(app, ["scaling", "fit", str(out), "--family", "bert", "--bootstrap", "5"])
    assert res.exit_code == 0, res.output
    assert {(r["law"], r["family"]) for r in pq.read_table(out / "fits.parquet").to_pylist()} == \
        {("data", "bert"), ("data", "gpt")}
    res = CliRunner().invoke(app, ["report", str(out), "--bootstrap", "10"])
    assert res.exit_code == 0 and "bert: L(D) at N" in res.output and "gpt: L(D) at N" in res.output


def test_runs_from_before_families_read_as_gpt(tmp_path):
    table = pa.table({"run_id": ["a", "b", "c"], "status": ["complete"] * 3, "unique_tokens": [1e4, 2e4, 4e4],
                      "params_non_embedding": [1e5] * 3, "params": [4e5] * 3, "best_val_loss": [5.0, 4.5, 4.2],
                      "best_val_bpb": [2.0, 1.8, 1.7]})
    pq.write_table(table, tmp_path / "runs.parquet")
    points = load_points(tmp_path)
    assert points.family == "gpt" and len(points) == 3
