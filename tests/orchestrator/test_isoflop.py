"""IsoFLOP sweeps: the planner's budgets and FLOP counts, the approach-2 fit on synthetic runs, the plot.

No Ray and no training: planning reads a small manifest.json written here (planning reads only its
tokenizer and scales), and the fits run on losses drawn from known Chinchilla constants.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalelab.orchestrator.isoflop_plan import plan_isoflop, prior_optimum
from scalelab.orchestrator.plan import SweepError, plan_sweep
from scalelab.orchestrator.reports import RUNS_SCHEMA, run_row
from scalelab.orchestrator.scaling.fit import fit_law
from scalelab.orchestrator.scaling.fits import FITS_SCHEMA
from scalelab.orchestrator.scaling.isoflop_compare import approach3_optimum, compare, law_points
from scalelab.orchestrator.scaling.isoflop_fit import fit_isoflop
from scalelab.orchestrator.scaling.isoflop_points import IsoFlopPoints, isoflop_points
from scalelab.orchestrator.scaling.isoflop_report import isoflop_html, isoflop_report
from scalelab.orchestrator.scaling.laws import CHINCHILLA, predict_loss
from scalelab.orchestrator.scaling.optimal import compute_optimal
from scalelab.orchestrator.scaling.points import PointsError
from scalelab.orchestrator.scaling.query import query
from scalelab.orchestrator.sweep_config import SweepConfig
from scalelab.core.config import ConfigError, validate
from scalelab.training.config import REPO
from scalelab.training.flops import flops_per_token
from scalelab.training.model import ModelConfig

SCALES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}
# Two-layer models whose sizes (all parameters, vocabulary 4096) step by ~1.4x from 88k to 1.07M.
WIDTHS = (16, 24, 32, 48, 64, 96, 128, 192, 256)
STEP_TOKENS = 4 * 2 * 128  # micro-batch 4 × 2 workers × seq_len 128


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    scales = {name: {"tokens": n, "shards": [], "last_shard_tokens": 0} for name, n in SCALES.items()}
    # The fields planning reads, and the rest a manifest must have to be read at all (no files behind them).
    entry = {"path": "validation.arrow", "index": "validation.idx.arrow", "tokens": 0, "documents": 0,
             "sha256": "0" * 64, "index_sha256": "0" * 64}
    (folder / "manifest.json").write_text(json.dumps({"tokenizer": {"vocab_size": 4096, "eod_id": 0, "sha256": "0" * 64},
                                                      "scales": scales, "shards": [], "validation": entry}))
    return folder


def sweep(corpus, tmp_path, **isoflop) -> SweepConfig:
    data = {"name": "iso", "corpus": str(corpus), "output": str(tmp_path / "out"),
            "models": [{"name": f"w{d}", "n_layer": 2, "n_head": 2, "d_model": d} for d in WIDTHS],
            "tokens": {"policy": "isoflop"}, "isoflop": {"budgets": ["1e13", 3e12], **isoflop},
            "base": str(REPO / "configs" / "train" / "sample.yaml"), "train": {"batch": {"micro_batch_size": 4}},
            "resources": {"workers": 2}}
    return validate(SweepConfig, data, "iso.yaml")


def model_of(width: int) -> ModelConfig:
    return ModelConfig(n_layer=2, n_head=2, d_model=width, vocab_size=4096, context=128)


def test_flops_per_token_counts_the_output_layer_and_attention():
    # w32 by hand: blocks 2 × (2 LayerNorms 128 + 12·32² + 9·32 biases) + final LayerNorm 64 = 25,472, plus the
    # tied embedding once as the output layer (4096 × 32), not the position embeddings; attention 12·L·d·T.
    assert flops_per_token(model_of(32), 128) == 6 * (25_472 + 4096 * 32) + 12 * 2 * 32 * 128 == 1_037_568


def test_plan_spends_each_budget_within_one_step(corpus, tmp_path):
    runs = plan_isoflop(sweep(corpus, tmp_path))
    assert sorted({r.budget for r in runs}) == [3e12, 1e13]
    for r in runs:
        fpt = flops_per_token(model_of(int(r.spec.model[1:])), 128)
        assert r.flops_per_token == fpt
        assert r.spec.tokens % STEP_TOKENS == 0 and r.spec.tokens == r.spec.steps * STEP_TOKENS
        assert abs(r.spec.tokens * fpt - r.budget) <= fpt * STEP_TOKENS / 2  # D·flops_per_token = C within a step
        assert r.spec.budget_flops == r.budget and r.spec.run_id.startswith(("C3e12-", "C1e13-"))
        assert r.spec.config.train.tokens == r.spec.tokens and r.spec.run_dir.name == r.spec.run_id
        # One pass over the smallest scale that holds the run's windows.
        assert r.spec.epochs <= 1.0
        windows = {s: (n - 1) // 128 for s, n in SCALES.items()}
        fits = [s for s, w in windows.items() if w >= r.spec.steps * 8]
        assert r.spec.scale == min(fits, key=SCALES.get)
    assert len({r.spec.run_id for r in runs}) == len(runs)


def test_plan_picks_sizes_on_both_sides_of_the_prior_optimum(corpus, tmp_path):
    cfg = sweep(corpus, tmp_path, models_per_budget=5, spread=3.0)
    runs = plan_isoflop(cfg)
    for budget in (3e12, 1e13):
        n_opt = math.sqrt(budget / (6 * 20))  # the default prior: 20 tokens per parameter
        assert prior_optimum(cfg.isoflop, budget) == pytest.approx(n_opt)
        sizes = sorted(r.spec.params for r in runs if r.budget == budget)
        assert len(sizes) == 5
        assert all(n_opt / 3.0 <= n <= n_opt * 3.0 for n in sizes)
        assert sizes[0] < n_opt / 1.5 and sizes[-1] > n_opt * 1.5  # spread out, not bunched at the centre
    # The hook: plan_sweep hands the policy to the IsoFLOP planner.
    assert [s.run_id for s in plan_sweep(cfg)] == [r.spec.run_id for r in runs]


def test_runs_parquet_row_records_the_budget(corpus, tmp_path):
    spec = plan_isoflop(sweep(corpus, tmp_path))[0].spec
    row = run_row("iso", spec, "pending", 0, None, None, None, None)
    assert row["flops_budget"] == 3e12 and set(row) == set(RUNS_SCHEMA.names)


def test_repeats_need_max_epochs(corpus, tmp_path):
    small = sweep(corpus, tmp_path).model_copy(update={"scales": ["100k", "1M"]})  # the candidate scales
    with pytest.raises(SweepError) as exc:
        plan_isoflop(small, "iso.yaml")
    message = str(exc.value)
    assert message.startswith("iso.yaml: corpus: at budget 3e+12 FLOPs w") and "isoflop.max_epochs 1:" in message
    assert "\n" not in message
    allowed = small.model_copy(update={"isoflop": small.isoflop.model_copy(update={"max_epochs": 30.0})})
    runs = plan_isoflop(allowed)
    repeated = [r.spec for r in runs if r.spec.epochs > 1]
    assert repeated and all(s.scale == "1M" for s in repeated)
    for s in repeated:  # epochs recorded: windows trained over the scale's windows
        assert s.epochs == pytest.approx(s.tokens / 128 / ((1_000_000 - 1) // 128))


def test_one_line_errors_name_the_field(corpus, tmp_path):
    with pytest.raises(SweepError, match=r"^iso\.yaml: isoflop\.budgets: 1e\+06 FLOPs buys less than one optimizer "
                                         r"step of any model; the cheapest step \(w16: 1,024 tokens"):
        plan_isoflop(sweep(corpus, tmp_path, budgets=[1e6]), "iso.yaml")
    with pytest.raises(SweepError, match=r"^iso\.yaml: models: at budget 1e\+13 FLOPs .* only 2 model\(s\)"):
        plan_isoflop(sweep(corpus, tmp_path, budgets=[1e13], spread=1.3), "iso.yaml")
    with pytest.raises(ConfigError, match="isoflop.budgets.*'lots' is not a FLOP count"):
        sweep(corpus, tmp_path, budgets=["lots"])
    with pytest.raises(ConfigError, match="isoflop.models_per_budget"):
        sweep(corpus, tmp_path, models_per_budget=2)
    data = sweep(corpus, tmp_path).model_dump()
    with pytest.raises(ConfigError, match="tokens.policy isoflop and the isoflop section"):
        validate(SweepConfig, {**data, "isoflop": None}, "iso.yaml")


# Approach 2 on losses drawn from known Chinchilla constants, with C = 6·N·D.
TRUE = {"E": 1.8, "A": 400.0, "B": 1200.0, "alpha": 0.34, "beta": 0.30}
BUDGETS = np.geomspace(1e17, 1e20, 4)
A_TRUE = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])  # N_opt ∝ C^a
B_TRUE = TRUE["alpha"] / (TRUE["alpha"] + TRUE["beta"])  # D_opt ∝ C^b


def isoflop_synthetic(noise=0.0, seed=0, sizes=7, spread=3.0, centre=1.0, counted=False) -> IsoFlopPoints:
    """`sizes` per budget, log-spaced over centre·N_opt/spread .. centre·N_opt·spread, each trained on C/(6N)."""
    rng = np.random.default_rng(seed)
    n = np.concatenate([compute_optimal(TRUE, c)["params"] * centre * np.geomspace(1 / spread, spread, sizes)
                        for c in BUDGETS])
    c = np.repeat(BUDGETS, sizes)
    d = c / (6 * n)
    loss = predict_loss("chinchilla", TRUE, n, d) + rng.normal(0, noise, n.size)
    return IsoFlopPoints(n, loss, c, d, 6 * n if counted else None, [str(i) for i in range(n.size)], "synthetic",
                         "as given")


def test_approach2_recovers_the_analytic_optimum():
    result = fit_isoflop(isoflop_synthetic(), bootstrap=0)
    assert result.d_rule == "6N" and "C = 6ND" in result.notes[0] and len(result.budgets) == 4
    for b in result.budgets:
        truth = compute_optimal(TRUE, b.budget)
        # A parabola in ln N is not the exact valley: ~0.3% off at a 9x span of sizes, centred.
        assert b.params_opt == pytest.approx(truth["params"], rel=0.01)
        assert b.tokens_opt == pytest.approx(b.budget / (6 * b.params_opt))
        assert b.tokens_opt == pytest.approx(truth["tokens"], rel=0.01)
        assert b.loss_opt == pytest.approx(truth["loss"], abs=1e-3) and not b.extrapolated
    assert result.params_law.exponent == pytest.approx(A_TRUE, abs=2e-3)
    assert result.tokens_law.exponent == pytest.approx(B_TRUE, abs=2e-3)
    assert result.params_law.exponent + result.tokens_law.exponent == pytest.approx(1.0)  # N*·D* = C/6
    g = compute_optimal(TRUE, 1.0)["params"]  # N_opt = G·C^a, so the coefficient is N_opt at C = 1
    assert result.params_law.coefficient == pytest.approx(g, rel=0.02)
    assert result.params_law.r2 > 0.9999


def test_minimum_outside_the_sizes_is_flagged():
    result = fit_isoflop(isoflop_synthetic(spread=2.0, centre=0.2), bootstrap=0)
    assert all(b.extrapolated for b in result.budgets)
    assert any("outside the sizes trained" in n for n in result.notes)


def test_bootstrap_intervals_contain_the_truth():
    covered, total = 0, 0
    for seed in range(8):
        result = fit_isoflop(isoflop_synthetic(noise=0.005, seed=seed), bootstrap=100, seed=seed)
        assert result.replicates == 100
        for b in result.budgets:
            truth = compute_optimal(TRUE, b.budget)
            lo, hi = b.params_ci
            assert lo < b.params_opt < hi and b.tokens_ci[0] < b.tokens_opt < b.tokens_ci[1]
            covered += lo <= truth["params"] <= hi and b.tokens_ci[0] <= truth["tokens"] <= b.tokens_ci[1]
            total += 1
        if seed == 0:
            lo, hi = result.params_law.exponent_ci
            assert lo <= A_TRUE <= hi and hi - lo < 0.05
            assert result.tokens_law.exponent_ci[0] <= B_TRUE <= result.tokens_law.exponent_ci[1]
    assert covered / total >= 0.8, (covered, total)  # 95% intervals, a little bias from the parabola


def test_three_sizes_per_budget_fit_but_give_no_intervals():
    result = fit_isoflop(isoflop_synthetic(noise=0.005, sizes=3), bootstrap=50)
    assert len(result.budgets) == 4 and result.replicates == 0
    assert all(b.params_ci is None for b in result.budgets) and result.params_law.exponent_ci is None
    assert any("exactly 3 sizes" in n for n in result.notes)
    with pytest.raises(PointsError, match="no budget has a loss minimum over >= 3 sizes"):
        fit_isoflop(isoflop_synthetic(sizes=2))


def chinchilla_fit(points: IsoFlopPoints):
    """Approach 3 on the points, L-BFGS from one start near the truth (the full grid takes minutes here)."""
    start = (math.log(300.0), 0.3, math.log(1000.0), 0.3, math.log(1.7))
    return fit_law(dataclasses.replace(CHINCHILLA, grid=[start]), law_points(points), bootstrap=0)


def test_approach3_beside_approach2_under_the_same_flop_count():
    points = isoflop_synthetic(noise=0.002)
    result = fit_isoflop(points, bootstrap=0)
    comparison = compare(points, result, chinchilla_fit(points))
    assert comparison.chinchilla.constants["alpha"] == pytest.approx(0.34, abs=0.05)
    for row, b in zip(comparison.rows, result.budgets):
        closed = compute_optimal(comparison.chinchilla.constants, row.budget)  # the 6N rule: C = 6ND
        assert (row.params_approach3, row.tokens_approach3) == (closed["params"], closed["tokens"])
        assert row.params_approach2 == b.params_opt
        truth = compute_optimal(TRUE, row.budget)["params"]
        assert row.params_approach3 == pytest.approx(truth, rel=0.1)
        assert row.params_approach2 == pytest.approx(truth, rel=0.05)


def test_counted_flops_per_token_set_d_and_approach3():
    # Runs that counted 6N FLOPs per token: interpolation between sizes gives 6N again, and the
    # numeric approach-3 optimum along C = flops_per_token(N)·D equals the closed form.
    points = isoflop_synthetic(counted=True)
    assert points.d_rule == "flops_per_token"
    assert points.flops_per_token(np.array([1e5, 3e7, 1e11])) == pytest.approx([6e5, 1.8e8, 6e11])
    n3, d3, l3 = approach3_optimum(TRUE, points, 1e19)
    closed = compute_optimal(TRUE, 1e19)
    assert (n3, d3, l3) == pytest.approx((closed["params"], closed["tokens"], closed["loss"]), rel=1e-5)
    # With output-layer and attention FLOPs the same budget buys fewer tokens, so the optimum moves.
    heavy = dataclasses.replace(points, counted_flops_per_token=6 * points.params + 4e6)
    n_heavy, d_heavy, _ = approach3_optimum(TRUE, heavy, 1e19)
    assert d_heavy == pytest.approx(1e19 / heavy.flops_per_token(n_heavy)) and d_heavy < closed["tokens"]
    grid = np.geomspace(n_heavy / 3, n_heavy * 3, 2001)  # brute force agrees
    brute = grid[np.argmin(predict_loss("chinchilla", TRUE, grid, heavy.tokens_at(1e19, grid)))]
    assert n_heavy == pytest.approx(brute, rel=2e-3)


def runs_table(points: IsoFlopPoints) -> pa.Table:
    """A sweep's runs.parquet for the points, with one failed run and one run of a data sweep (no budget)."""
    rows = []
    for i, (n, loss, c, d) in enumerate(zip(points.params, points.loss, points.budget, points.tokens)):
        rows.append({"run_id": f"C{c:.0e}-m{i}-s0-0000000{i % 10}", "status": "complete", "params": int(n * 1.2),
                     "params_non_embedding": int(n), "final_val_loss": float(loss), "tokens_seen": int(d),
                     "flops": 6.0 * int(n) * int(d), "flops_budget": float(c), "unique_tokens": int(d)})
    rows.append({**rows[0], "run_id": "failed", "status": "failed", "final_val_loss": None})
    rows.append({**rows[0], "run_id": "data-sweep", "flops_budget": None, "final_val_loss": 9.0})
    return pa.Table.from_pylist(rows, schema=RUNS_SCHEMA)


def test_report_writes_fits_the_plot_and_a_query_view(tmp_path):
    points = isoflop_synthetic(noise=0.003)
    pq.write_table(runs_table(points), tmp_path / "runs.parquet")
    pq.write_table(pa.Table.from_pylist([{"law": "data", "constant": "E", "value": 2.0}], schema=FITS_SCHEMA),
                   tmp_path / "fits.parquet")  # another law's rows stay
    read = isoflop_points(pq.read_table(tmp_path / "runs.parquet"), "runs.parquet")
    assert len(read) == len(points) and read.d_rule == "flops_per_token" and read.n_kind == "non_embedding"

    rep = isoflop_report(tmp_path, bootstrap=40, chinchilla=chinchilla_fit(read))
    png = (tmp_path / "plots" / "isoflop.png").read_bytes()
    assert rep.plot == tmp_path / "plots" / "isoflop.png" and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    doc = json.loads((tmp_path / "fits.json").read_text())["isoflop"]
    assert [b["flops"] for b in doc["budgets"]] == pytest.approx(list(BUDGETS))
    assert doc["params_law"]["exponent"] == pytest.approx(A_TRUE, abs=0.02) and doc["replicates"] == 40
    assert len(doc["approach3"]["optima"]) == 4
    fits = query("SELECT law, constant, value, ci_low, ci_high FROM fits ORDER BY law, constant", tmp_path).to_pylist()
    assert [(r["law"], r["constant"]) for r in fits] == [("data", "E"), ("isoflop", "G_D"), ("isoflop", "G_N"),
                                                         ("isoflop", "a"), ("isoflop", "b")]
    a = next(r for r in fits if r["constant"] == "a")
    assert a["ci_low"] <= a["value"] <= a["ci_high"]
    budgets = query("SELECT flops_budget, params_opt, params_approach3 FROM isoflop ORDER BY 1", tmp_path).to_pylist()
    for row, c in zip(budgets, BUDGETS):
        truth = compute_optimal(TRUE, c)["params"]
        assert row["params_opt"] == pytest.approx(truth, rel=0.05)
        assert row["params_approach3"] == pytest.approx(truth, rel=0.1)
    page = isoflop_html(rep)
    assert page.count("<tr>") == 5 and "N* = " in page and "approach 3" in page

    # Written again (a second `scalelab report`), the isoflop rows are replaced, not added.
    isoflop_report(tmp_path, bootstrap=0, approach3=False)
    assert query("SELECT count(*) AS n FROM fits WHERE law = 'isoflop'", tmp_path).column("n")[0].as_py() == 4
    assert json.loads((tmp_path / "fits.json").read_text())["isoflop"]["approach3"] is None
