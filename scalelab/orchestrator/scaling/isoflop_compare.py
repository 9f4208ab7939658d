"""Approach 2 beside approach 3: N_opt at each budget from the IsoFLOP parabolas and from a
Chinchilla fit L = E + A/N^α + B/D^β of the same runs.

Approach 2 is biased at small scale (the valleys are not parabolas, sizes sit unevenly around the
minimum); approach 3 has its own biases (the functional form, the Huber fit). Seeing both at every
budget shows how much the answer depends on the method.

The Chinchilla fit here (`fit_approach3`) uses D = the tokens each run trained on (an IsoFLOP run
sees each once), not the scale's unique tokens that a data sweep's fit reads: an IsoFLOP run uses
only part of its scale. Both optima spend the budget the same way: with the 6N rule (C = 6ND) approach 3's optimum
is `compute_optimal`'s closed form; with counted FLOPs per token it is the minimum over N of
L(N, C / flops_per_token(N)), found numerically.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from scipy.optimize import minimize_scalar

from scalelab.orchestrator.scaling.fit import LawFit, fit_law
from scalelab.orchestrator.scaling.isoflop_fit import IsoFlopFit
from scalelab.orchestrator.scaling.isoflop_points import RULE_6N, IsoFlopPoints
from scalelab.orchestrator.scaling.laws import CHINCHILLA, predict_loss
from scalelab.orchestrator.scaling.optimal import compute_optimal
from scalelab.orchestrator.scaling.points import Points, PointsError

GRID_STRIDE = 10  # 450 of the grid's 4,500 starts

@dataclass(frozen=True)
class OptimumRow:
    budget: float
    params_approach2: float
    params_approach3: float
    tokens_approach2: float
    tokens_approach3: float
    loss_approach3: float

    def to_json(self) -> dict[str, Any]:
        return {"flops": self.budget, "params_approach2": self.params_approach2,
                "params_approach3": self.params_approach3, "tokens_approach2": self.tokens_approach2,
                "tokens_approach3": self.tokens_approach3, "loss_approach3": self.loss_approach3}


@dataclass(frozen=True)
class Comparison:
    chinchilla: LawFit        # approach 3 on the IsoFLOP runs
    rows: tuple[OptimumRow, ...]

    def to_json(self) -> dict[str, Any]:
        c = self.chinchilla
        return {"chinchilla": {**c.constants, "r2": c.r2, "n_points": c.n_points},
                "optima": [r.to_json() for r in self.rows]}


def approach3_optimum(constants: dict[str, float], points: IsoFlopPoints, budget: float) -> tuple[float, float, float]:
    """(N, D, L) minimising the Chinchilla loss at budget C under the points' FLOP accounting."""
    if points.d_rule == RULE_6N:
        o = compute_optimal(constants, budget)
        return o["params"], o["tokens"], o["loss"]

    def loss_at(ln_n: float) -> float:
        n = math.exp(ln_n)
        return float(predict_loss("chinchilla", constants, n, points.tokens_at(budget, n)))

    # Search ±5 decades around the sizes trained: the loss along an IsoFLOP line has one minimum.
    lo, hi = math.log(points.params.min()) - 11.5, math.log(points.params.max()) + 11.5
    best = minimize_scalar(loss_at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    n = math.exp(best.x)
    return n, float(points.tokens_at(budget, n)), float(best.fun)


def law_points(points: IsoFlopPoints) -> Points:
    """The runs as (N, D = tokens trained, loss) points for a Chinchilla fit."""
    return Points(points.params, points.tokens, points.loss, np.ones(len(points)), points.labels, points.source,
                  points.n_kind)


def fit_approach3(points: IsoFlopPoints, start: Optional[LawFit] = None) -> Optional[LawFit]:
    """Approach 3 on the IsoFLOP runs, for the comparison only (no bootstrap): L-BFGS from every
    GRID_STRIDE-th start of Hoffmann et al.'s grid and from `start` (say, the report's own Chinchilla
    fit, which sits near). The whole grid again would double the time of a report that already fits it."""
    if len(np.unique(points.params)) < 2 or len(set(zip(points.params, points.tokens))) < 5:
        return None
    starts = ([tuple(start.theta)] if start is not None else []) + CHINCHILLA.grid[::GRID_STRIDE]
    try:
        return fit_law(dataclasses.replace(CHINCHILLA, grid=starts), law_points(points), bootstrap=0)
    except PointsError:
        return None


def compare(points: IsoFlopPoints, approach2: IsoFlopFit, chinchilla: Optional[LawFit]) -> Optional[Comparison]:
    """Both optima per budget, approach 3's from `chinchilla` (a fit of these runs, e.g. `fit_approach3`);
    None without one, or where it has no optimum (α or β not positive)."""
    if chinchilla is None:
        return None
    c = chinchilla.constants
    if not (c["alpha"] > 0 and c["beta"] > 0):
        return None
    rows = []
    for b in approach2.budgets:
        n3, d3, l3 = approach3_optimum(c, points, b.budget)
        rows.append(OptimumRow(b.budget, b.params_opt, n3, b.tokens_opt, d3, l3))
    return Comparison(chinchilla, tuple(rows))
