"""Backtests: refit without the points a scaling law exists to extrapolate to, and predict them.

A law fitted to every run says little about how well it extrapolates; the honest check holds out
the runs furthest along the axis the law is used to extrapolate, refits on the rest, and compares
its predictions with what those runs measured. A per-size fit L(D) holds out the largest D; a joint
fit L(N, D) holds out the largest-compute runs (the top HOLD_OUT_FRACTION by 6·N·D, D counting
repeated epochs, and at least one run).

The refit starts from the full fit's best optima rather than the whole grid (a grid search per
backtest would double the fit's time); the held-out points influence only where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from scalelab.orchestrator.scaling.laws import Law
from scalelab.orchestrator.scaling.multistart import Optimum, refit_rows
from scalelab.orchestrator.scaling.objective import HuberObjective
from scalelab.orchestrator.scaling.points import Points

HOLD_OUT_FRACTION = 0.2


@dataclass(frozen=True)
class Backtest:
    rule: str                  # which points were held out, in words
    held_out: list[str]        # their labels (run ids or row numbers)
    predicted: list[float]
    observed: list[float]

    @property
    def rel_error(self) -> list[float]:
        return [(p - o) / o for p, o in zip(self.predicted, self.observed)]

    def to_json(self) -> dict[str, Any]:
        errors = np.abs(self.rel_error)
        return {"rule": self.rule, "held_out": self.held_out, "predicted": self.predicted,
                "observed": self.observed, "rel_error": self.rel_error,
                "max_rel_error": float(errors.max()), "mean_rel_error": float(errors.mean())}


def held_out_mask(law: Law, points: Points) -> tuple[np.ndarray, str]:
    if not law.joint:
        mask = points.tokens == points.tokens.max()
        return mask, f"held out the largest D ({points.tokens.max():.4g} tokens, {int(mask.sum())} run(s))"
    compute = 6.0 * points.params * points.tokens * np.maximum(points.epochs, 1.0)
    k = max(1, int(round(HOLD_OUT_FRACTION * len(points))))
    mask = np.zeros(len(points), dtype=bool)
    mask[np.argsort(compute, kind="stable")[-k:]] = True
    return mask, (f"held out the top {HOLD_OUT_FRACTION:.0%} of runs by compute 6·N·D "
                  f"({k} of {len(points)}, from {compute[mask].min():.3g} FLOPs)")


def backtest(law: Law, points: Points, optima: list[Optimum], delta: float) -> tuple[Optional[Backtest], str]:
    """The backtest, or None and a note saying why it could not be run."""
    mask, rule = held_out_mask(law, points)
    train = points.subset(~mask)
    distinct = len({(n, d, e) for n, d, e in zip(train.params, train.tokens, train.epochs)})
    n_theta = len(law.theta_names)
    if distinct < n_theta:
        return None, (f"backtest not run: it {rule}, which leaves {distinct} distinct point(s), and the "
                      f"{law.name} law needs at least {n_theta}")
    if np.ptp(train.loss) == 0:
        return None, f"backtest not run: it {rule}, and the remaining losses are all equal"
    lower, upper = law.bounds(train)
    objective = HuberObjective(law, points, delta, weights=(~mask).astype(float)[None, :])
    (refit,) = refit_rows(objective, np.array([o.theta for o in optima]), lower[None, :], upper[None, :])
    if refit is None:
        return None, f"backtest not run: the refit without the held-out runs found no finite optimum ({rule})"
    held = points.subset(mask)
    predicted, _ = law.log_pred(refit.theta, held)
    return Backtest(rule, held.labels, [float(v) for v in np.exp(predicted)], [float(v) for v in held.loss]), ""
