"""Kaplan's early-stopped L(N, D) recovered from synthetic runs, and the answer in words."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.orchestrator.scaling.answer import data_answer, joint_sentence, sentence
from scalelab.orchestrator.scaling.fits import fit
from scalelab.orchestrator.scaling.laws import predict_loss
from scalelab.orchestrator.scaling.points import Points

KAPLAN_TRUE = {"E": 2.0, "N_c": 2e3, "alpha_N": 0.3, "D_c": 2e5, "alpha_D": 0.3}


def kaplan_points(noise: float = 0.002, seed: int = 0) -> Points:
    rng = np.random.default_rng(seed)
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e3, 1e5, 4), np.geomspace(2.5e4, 1.6e6, 7)))
    loss = predict_loss("kaplan-nd", KAPLAN_TRUE, n, d) * np.exp(rng.normal(0, noise, n.size))
    return Points(n, d, loss, np.ones_like(n), [f"{i}" for i in range(n.size)], "synthetic", "as given")


def test_kaplan_nd_recovers_known_constants():
    (f,) = fit(kaplan_points(), "kaplan-nd", bootstrap=50)
    assert f.r2 > 0.99
    for key in ("E", "alpha_N", "alpha_D"):
        assert f.constants[key] == pytest.approx(KAPLAN_TRUE[key], rel=0.1), key
        lo, hi = f.ci[key]
        assert lo <= f.constants[key] <= hi
    assert f.backtest is not None and max(abs(e) for e in f.backtest.rel_error) < 0.01
    line = joint_sentence(f)
    assert "Kaplan et al. 2020" in line and f"R² {f.r2:.4f}" in line and "backtest error" in line


def test_the_answer_for_one_size_matches_its_fit():
    points = kaplan_points()
    size = float(np.unique(points.params)[0])
    (f,) = fit(points.subset(points.params == size), "data", bootstrap=50)
    top = float(points.tokens.max())
    a = data_answer(f, top, "bpb")
    c = f.constants
    at = lambda d: c["E"] + c["B"] / d ** c["beta"]  # noqa: E731
    assert a.doubling_gain == pytest.approx((at(top) - at(2 * top)) / at(top))
    assert a.predicted_10x == pytest.approx(at(10 * top))
    assert a.doubling_gain_ci[0] <= a.doubling_gain <= a.doubling_gain_ci[1]
    assert a.irreducible_ci == tuple(f.ci["E"]) and a.backtest_error == max(abs(e) for e in f.backtest.rel_error)
    text = sentence(a)
    assert text.startswith("at N = 1k, doubling the data from 1.6M tokens lowers validation loss by")
    assert f"{a.doubling_gain * 100:.1f}%" in text and "predicted bpb at 10× the data (16M tokens)" in text
