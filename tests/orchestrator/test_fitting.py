"""The fitter itself: recovery of known constants, agreement with scipy, bounds, backtests, NaN-free
JSON, and the points a sweep's runs.parquet gives (best bpb or nats, non-converged runs left out)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.optimize import minimize
from typer.testing import CliRunner

from scalelab.orchestrator.scaling.batched_lbfgs import minimize_batched
from scalelab.orchestrator.scaling.finite_json import dumps
from scalelab.orchestrator.scaling.fit import fit_law
from scalelab.orchestrator.scaling.fits import fit, fits_json, write_fits
from scalelab.orchestrator.scaling.laws import CHINCHILLA, DATA, EXPONENT_RANGE, predict_loss
from scalelab.orchestrator.scaling.objective import HuberObjective
from scalelab.orchestrator.scaling.optimal import BESIROGLU_2024
from scalelab.orchestrator.scaling.points import Points, PointsError, points_from_table
from scalelab.cli import app


def strict_json(text: str):
    """json.loads that refuses NaN / Infinity, as strict parsers (JavaScript, jq) do."""
    def refuse(name):
        raise ValueError(f"non-finite number {name} in JSON")
    return json.loads(text, parse_constant=refuse)


def chinchilla_points(noise: float = 0.001, seed: int = 0) -> Points:
    """Epoch AI's refit constants (Besiroglu et al. 2024) on a Chinchilla-like grid: N 70M-16B, D 5B-500B."""
    rng = np.random.default_rng(seed)
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(7e7, 1.6e10, 8), np.geomspace(5e9, 5e11, 8)))
    loss = predict_loss("chinchilla", BESIROGLU_2024, n, d) * np.exp(rng.normal(0, noise, n.size))
    return Points(n, d, loss, np.ones_like(n), [f"run{i}" for i in range(n.size)], "synthetic", "as given")


def data_points(e=2.0, b=400.0, beta=0.3, noise=0.001, k=8, seed=0) -> Points:
    rng = np.random.default_rng(seed)
    d = np.geomspace(1e8, 1e11, k)
    loss = (e + b / d ** beta) * np.exp(rng.normal(0, noise, k))
    return Points(np.full(k, 1e8), d, loss, np.ones(k), [f"d{i}" for i in range(k)], "synthetic", "as given")


def rel(a, b):
    return abs(a - b) / abs(b)


def test_chinchilla_fit_recovers_epoch_constants_from_synthetic_points():
    f = fit_law(CHINCHILLA, chinchilla_points(), bootstrap=20)
    for key in ("E", "alpha", "beta"):
        assert rel(f.constants[key], BESIROGLU_2024[key]) < 0.01, (key, f.constants[key])
    # A and B are exp of intercepts: a 0.5% error in alpha moves A by alpha·ln N·0.5% ≈ 4%.
    for key in ("A", "B"):
        assert rel(f.constants[key], BESIROGLU_2024[key]) < 0.05, (key, f.constants[key])
    assert set(f.ci) == set(f.constants) and len(f.samples) == 20
    for key, (lo, hi) in f.ci.items():
        assert lo <= f.constants[key] <= hi or rel(f.constants[key], lo) < 1e-3 or rel(f.constants[key], hi) < 1e-3


def test_data_law_recovers_its_constants():
    f = fit_law(DATA, data_points(), bootstrap=20)
    assert rel(f.constants["E"], 2.0) < 0.01 and rel(f.constants["beta"], 0.3) < 0.01
    assert rel(f.constants["B"], 400.0) < 0.05
    assert f.r2 > 0.999


def test_batched_fitter_lands_where_scipy_does():
    pts = chinchilla_points(noise=0.003, seed=1)
    objective = HuberObjective(CHINCHILLA, pts)
    lower, upper = CHINCHILLA.bounds(pts)
    starts = np.array(CHINCHILLA.grid[::150], dtype=float)  # 30 starts spread over the grid
    batched = minimize_batched(objective.batch, starts, lower, upper)
    bounds = [(None if np.isinf(l) else l, None if np.isinf(h) else h) for l, h in zip(lower, upper)]
    scipy_best = min((minimize(objective.one, s, jac=True, method="L-BFGS-B", bounds=bounds,
                               options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-10}) for s in starts),
                     key=lambda r: r.fun)
    best = int(np.argmin(batched.fun))
    assert batched.fun[best] == pytest.approx(scipy_best.fun, rel=1e-6)
    assert np.allclose(batched.x[best], scipy_best.x, atol=1e-3)
    # And the whole fit (screen + polish) gives scipy's constants to 4 digits.
    f = fit_law(CHINCHILLA, pts, bootstrap=0)
    for key, value in CHINCHILLA.constants(scipy_best.x).items():
        assert rel(f.constants[key], value) < 1e-4, key


def test_batched_lbfgs_respects_bounds_like_scipy():
    # Rosenbrock, batched, with the unconstrained minimum (1, 1) outside the box: the answer is on a bound.
    def rosen(x, members):
        a, b = x[:, 0], x[:, 1]
        f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        g = np.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)], axis=1)
        return f, g
    lower, upper = np.array([-2.0, -1.0]), np.array([0.8, 2.0])
    starts = np.array([[-1.5, 1.5], [0.0, 0.0], [0.5, -0.5], [-1.0, -1.0]])
    res = minimize_batched(rosen, starts, lower, upper)
    ref = minimize(lambda x: rosen(x[None], None)[0][0], starts[0], jac=lambda x: rosen(x[None], None)[1][0],
                   method="L-BFGS-B", bounds=list(zip(lower, upper)))
    assert np.all(res.x >= lower) and np.all(res.x <= upper)
    assert np.allclose(res.x, ref.x, atol=1e-5) and res.converged.all()


def test_fits_stay_in_bounds_and_say_so():
    # beta = 3 is outside [0, 2.5]: the fit stops at the bound and notes it.
    d = np.geomspace(10, 1000, 6)
    pts = Points(np.full(6, 1e8), d, 1.0 + 1e6 / d ** 3, np.ones(6), list("abcdef"), "steep", "as given")
    f = fit_law(DATA, pts, bootstrap=10)
    assert f.constants["beta"] <= EXPONENT_RANGE[1] + 1e-12
    assert f.constants["beta"] == pytest.approx(EXPONENT_RANGE[1])
    assert any("beta" in n and "bound" in n for n in f.notes)
    assert f.bounds["beta"] == list(EXPONENT_RANGE) and f.bounds["E"][1] == pytest.approx(pts.loss.min())
    for sample in f.samples:
        assert 0 <= sample["beta"] <= EXPONENT_RANGE[1] + 1e-12
        assert 0 < sample["E"] <= pts.loss.max()
    g = fit_law(CHINCHILLA, chinchilla_points(noise=0.01, seed=3), bootstrap=10)
    assert 0 < g.constants["E"] <= g.bounds["E"][1] + 1e-12
    for sample in g.samples:
        assert all(EXPONENT_RANGE[0] <= sample[k] <= EXPONENT_RANGE[1] + 1e-12 for k in ("alpha", "beta"))


def test_backtests():
    f = fit_law(CHINCHILLA, chinchilla_points(), bootstrap=0)
    bt = f.to_json()["backtest"]
    assert len(bt["held_out"]) == round(0.2 * 64) and "compute" in bt["rule"]
    # The held-out runs are the largest-compute ones.
    pts = chinchilla_points()
    compute = dict(zip(pts.labels, pts.params * pts.tokens))
    assert min(compute[l] for l in bt["held_out"]) >= sorted(compute.values())[-len(bt["held_out"])]
    assert len(bt["predicted"]) == len(bt["observed"]) == len(bt["rel_error"]) == len(bt["held_out"])
    assert bt["max_rel_error"] < 0.01 and bt["mean_rel_error"] <= bt["max_rel_error"]
    g = fit_law(DATA, data_points(), bootstrap=0)
    bt = g.to_json()["backtest"]
    assert bt["held_out"] == ["d7"] and "largest D" in bt["rule"] and bt["max_rel_error"] < 0.01
    # Three points and three parameters: no refit without one of them, and the fit says why.
    h = fit_law(DATA, data_points(k=3), bootstrap=0)
    assert h.backtest is None and h.to_json()["backtest"] is None
    assert any(n.startswith("backtest not run") and "needs at least 3" in n for n in h.notes)


def test_fit_json_has_no_nan_or_infinity(tmp_path):
    # Loss rising with D: Kaplan's alpha_D stops at its bound 0, so D_c is infinite; a data-law fit
    # to 3 points has no backtest. JSON must still parse strictly, with null in their place.
    d = np.geomspace(1e6, 1e9, 4)
    pts = Points(np.full(4, 1e8), d, np.array([3.0, 3.1, 3.2, 3.3]), np.ones(4), list("abcd"), "rising", "as given")
    (f,) = fit(pts, "kaplan", bootstrap=5)
    assert math.isinf(f.constants["D_c"])
    out = strict_json(dumps(fits_json([f])))["fits"][0]
    assert out["D_c"] is None and out["alpha_D"] == pytest.approx(0.0, abs=1e-9)
    assert out["ci"]["D_c"] == [None, None] or all(v is None or math.isfinite(v) for v in out["ci"]["D_c"])
    h = fit_law(DATA, data_points(k=3), bootstrap=0)
    (tmp_path / "runs.parquet").write_bytes(b"")  # write_fits only needs the folder
    write_fits(tmp_path, [f, h])
    doc = strict_json((tmp_path / "fits.json").read_text())
    assert doc["kaplan"][0]["D_c"] is None and doc["data"][0]["backtest"] is None
    assert dumps({"x": float("nan"), "y": [np.float64("inf"), 1.0]}) == '{"x": null, "y": [null, 1.0]}'


def test_too_few_points_and_equal_losses_are_clear_errors():
    with pytest.raises(PointsError, match=r"^synthetic: .*the chinchilla law has 5 parameters"):
        fit(data_points(k=4), "chinchilla")
    flat = Points(np.full(5, 1e8), np.geomspace(1e8, 1e10, 5), np.full(5, 3.0), np.ones(5), list("abcde"),
                  "flat.csv", "as given")
    with pytest.raises(PointsError, match=r"^flat.csv: all 5 losses are equal \(3\)"):
        fit(flat, "data")


def test_joint_fit_warns_when_sizes_span_less_than_a_decade():
    pts = chinchilla_points()
    narrow = pts.subset(pts.params <= pts.params.min() * 5)
    f = fit_law(CHINCHILLA, narrow, bootstrap=0)
    assert any("less than a decade" in n for n in f.notes)
    assert not any("less than a decade" in n for n in fit_law(CHINCHILLA, pts, bootstrap=0).notes)


def runs_table(bpb=True, bpb_nulls=False, converged=True) -> pa.Table:
    """A sweep's runs.parquet, the columns the points read: 3 sizes x 4 data scales, one run failed."""
    rows = []
    for i, (n, d) in enumerate((n, d) for n in (1e6, 4e6, 1.6e7) for d in (1e7, 3e7, 1e8, 3e8)):
        nats = 2.0 + 300 / n ** 0.3 + 500 / d ** 0.3
        row = {"run_id": f"r{i}", "status": "complete", "unique_tokens": int(d), "params": int(n * 1.2),
               "params_non_embedding": int(n), "epochs": 1.0, "final_val_loss": nats + 0.01,
               "best_val_loss": nats}
        if bpb:
            row["best_val_bpb"] = None if (bpb_nulls and i == 0) else nats * 0.6
        if converged:
            row["converged"] = False if i in (3, 7) else (None if i == 0 else True)
        rows.append(row)
    rows.append({**rows[0], "run_id": "failed", "status": "failed", "best_val_loss": None, "best_val_bpb": None})
    return pa.Table.from_pylist(rows)


def test_runs_points_use_best_bpb_or_nats_and_leave_out_unconverged_runs():
    bpb = points_from_table(runs_table(), "runs.parquet")
    nats = points_from_table(runs_table(), "runs.parquet", metric="nats")
    assert bpb.loss_kind == "best_val_bpb" and nats.loss_kind == "best_val_loss"
    assert np.allclose(bpb.loss, nats.loss * 0.6)
    assert "r3" not in bpb.labels and "r7" not in bpb.labels and "failed" not in bpb.labels
    assert "r0" in bpb.labels and len(bpb) == 10  # converged null (an older report): kept
    assert bpb.notes == ("left out 2 run(s) that did not converge: r3, r7",)
    # Older reports: no bpb column, or runs without it -> nats, with a note.
    for table in (runs_table(bpb=False), runs_table(bpb_nulls=True)):
        old = points_from_table(table, "runs.parquet")
        assert old.loss_kind == "best_val_loss" and any("nats per token" in n for n in old.notes)
    assert points_from_table(runs_table(converged=False), "runs.parquet").notes == ()
    with pytest.raises(PointsError, match="metric joules"):
        points_from_table(runs_table(), "runs.parquet", metric="joules")
    # Fits carry the points' notes into their JSON.
    (f,) = fit(bpb, "chinchilla", bootstrap=0)
    assert "left out 2 run(s) that did not converge: r3, r7" in f.to_json()["notes"]


def test_cli_fit_metric_notes_and_errors(tmp_path):
    runner = CliRunner()
    report = tmp_path / "sweep"
    report.mkdir()
    pq.write_table(runs_table(), report / "runs.parquet")
    res = runner.invoke(app, ["scaling", "fit", str(report), "--law", "chinchilla", "--bootstrap", "3"])
    assert res.exit_code == 0, res.output
    assert "did not converge: r3, r7" in res.output and "backtest:" in res.output
    doc = strict_json((report / "fits.json").read_text())
    assert doc["chinchilla"][0]["backtest"]["held_out"]
    res = runner.invoke(app, ["scaling", "fit", str(report), "--law", "chinchilla", "--bootstrap", "0",
                              "--metric", "nats", "--json"])
    assert res.exit_code == 0 and strict_json(res.stdout)["E"] > 1.0
    res = runner.invoke(app, ["scaling", "fit", str(report), "--metric", "joules", "--json"])
    assert res.exit_code == 2 and "joules" in strict_json(res.stdout)["error"]

    (tmp_path / "words.csv").write_text("params,tokens,loss\n1e6,1e6,low\n1e6,2e6,high\n1e6,3e6,mid\n")
    res = runner.invoke(app, ["scaling", "fit", str(tmp_path / "words.csv"), "--json"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert strict_json(res.stdout)["error"].startswith(f"{tmp_path / 'words.csv'}: column loss must be numeric")
    (tmp_path / "empty.csv").write_text("params,tokens,loss\n")
    res = runner.invoke(app, ["scaling", "fit", str(tmp_path / "empty.csv")])
    assert res.exit_code == 2 and "empty.csv: no rows to fit" in res.output
    (tmp_path / "flat.csv").write_text("params,tokens,loss\n1e6,1e6,3\n1e6,2e6,3\n1e6,3e6,3\n1e6,4e6,3\n")
    res = runner.invoke(app, ["scaling", "fit", str(tmp_path / "flat.csv"), "--json"])
    assert res.exit_code == 2 and "losses are equal" in strict_json(res.stdout)["error"]

    (tmp_path / "bad.json").write_text("{not json")
    res = runner.invoke(app, ["scaling", "predict", "--params", "1e9", "--tokens", "1e10", "--fit",
                              str(tmp_path / "bad.json")])
    assert res.exit_code == 2 and "bad.json: not readable JSON" in res.output and "Traceback" not in res.output
    (tmp_path / "list.json").write_text("[1, 2]")
    res = runner.invoke(app, ["scaling", "predict", "--params", "1e9", "--tokens", "1e10", "--fit",
                              str(tmp_path / "list.json")])
    assert res.exit_code == 2 and "list.json: not a fits.json" in res.output
    res = runner.invoke(app, ["scaling", "predict", "--params", "1e9", "--tokens", "1e10", "--fit", str(report)])
    assert res.exit_code == 0, res.output


def test_a_fit_and_its_intervals_do_not_depend_on_the_order_of_the_rows():
    """The bootstrap draws residuals by position: the table's rows (in run-id or finish order) are put
    in one order first, so the same points give the same constants and intervals however they came."""
    pts = chinchilla_points(noise=0.01, seed=2)
    table = pa.table({"params": pts.params, "tokens": pts.tokens, "loss": pts.loss})
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    a = fit(points_from_table(table, "t"), "chinchilla", bootstrap=30)[0]
    b = fit(points_from_table(shuffled, "t"), "chinchilla", bootstrap=30)[0]
    assert a.constants == b.constants and a.ci == b.ci and a.ci
