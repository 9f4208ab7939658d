"""Fitting a law to points: Huber loss on log L, L-BFGS from every grid start, bootstrap intervals.

`fit_law` runs L-BFGS from every point of the law's grid and keeps the lowest objective (Hoffmann
et al. 2022, approach 3; Huber δ = 1e-3). Bootstrap intervals resample the points (runs) with
replacement and refit each resample from the full fit's best few starts, not the whole grid: the
resamples sit near the full fit, and the whole grid per resample would cost minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from scipy.optimize import minimize

from orchestrator.scaling.laws import Law
from orchestrator.scaling.points import Points, PointsError

HUBER_DELTA = 1e-3


def huber_objective(theta: np.ndarray, law: Law, points: Points, delta: float) -> tuple[float, np.ndarray]:
    log_pred, jac = law.log_pred(theta, points)
    r = log_pred - np.log(points.loss)
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum()
    d_r = np.where(small, r, delta * np.sign(r))
    return float(value), jac @ d_r


@dataclass
class LawFit:
    law: str
    constants: dict[str, float]
    theta: np.ndarray
    objective: float
    r2: float                      # on log loss
    residuals: list[dict[str, Any]]  # per point: label, N, D, loss, predicted, log residual
    n_points: int
    ci: dict[str, list[float]] = field(default_factory=dict)  # constant -> [low, high]
    ci_level: float = 0.95
    samples: list[dict[str, float]] = field(default_factory=list)  # bootstrap constants
    group: Optional[float] = None  # the model size (N) of a per-size data-law fit
    notes: list[str] = field(default_factory=list)

    def to_json(self, with_samples: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"law": self.law, **self.constants, "ci": self.ci, "ci_level": self.ci_level,
                               "r2": self.r2, "n_points": self.n_points, "residuals": self.residuals}
        if self.group is not None:
            out["params"] = self.group
        if self.notes:
            out["notes"] = self.notes
        if with_samples:
            out["samples"] = self.samples
        return out


def _local_fits(law: Law, points: Points, starts: list, delta: float) -> list[tuple[float, np.ndarray, tuple]]:
    found = []
    for start in starts:
        res = minimize(huber_objective, np.asarray(start, dtype=float), args=(law, points, delta), jac=True,
                       method="L-BFGS-B", options={"maxiter": 1000})
        if np.all(np.isfinite(res.x)) and np.isfinite(res.fun):
            found.append((float(res.fun), res.x, tuple(start)))
    found.sort(key=lambda f: f[0])
    return found


def r_squared(law: Law, theta: np.ndarray, points: Points) -> tuple[float, np.ndarray]:
    log_pred, _ = law.log_pred(theta, points)
    log_obs = np.log(points.loss)
    ss_res = float(((log_obs - log_pred) ** 2).sum())
    ss_tot = float(((log_obs - log_obs.mean()) ** 2).sum())
    return (1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan"), log_pred


def fit_law(law: Law, points: Points, bootstrap: int = 100, seed: int = 0, ci_level: float = 0.95,
            delta: float = HUBER_DELTA, keep_starts: int = 5) -> LawFit:
    n_theta = len(law.theta_names)
    if len(np.unique(np.stack([points.params, points.tokens, points.epochs]), axis=1).T) < n_theta:
        raise PointsError(f"{points.source}: {len(points)} point(s) with {len(set(zip(points.params, points.tokens)))} "
                          f"distinct (N, D): the {law.name} law has {n_theta} parameters and needs at least "
                          f"{n_theta} distinct points")
    found = _local_fits(law, points, law.grid, delta)
    if not found:
        raise PointsError(f"{points.source}: the {law.name} fit did not converge from any start")
    objective, theta, _ = found[0]
    r2, log_pred = r_squared(law, theta, points)
    residuals = [{"label": lab, "params": float(n), "tokens": float(d), "loss": float(l), "predicted": float(np.exp(lp)),
                  "log_residual": float(np.log(l) - lp)}
                 for lab, n, d, l, lp in zip(points.labels, points.params, points.tokens, points.loss, log_pred)]
    fit = LawFit(law=law.name, constants=law.constants(theta), theta=theta, objective=objective, r2=r2,
                 residuals=residuals, n_points=len(points), ci_level=ci_level)
    if bootstrap > 0:
        starts = [tuple(theta)] + [f[2] for f in found[:keep_starts]]
        rng = np.random.default_rng(seed)
        for _ in range(bootstrap):
            idx = rng.integers(0, len(points), len(points))
            sample = Points(points.params[idx], points.tokens[idx], points.loss[idx], points.epochs[idx],
                            [points.labels[i] for i in idx], points.source, points.n_kind)
            best = _local_fits(law, sample, starts, delta)
            if best:
                fit.samples.append(law.constants(best[0][1]))
        lo, hi = (1 - ci_level) / 2 * 100, (1 + ci_level) / 2 * 100
        for key in fit.constants:
            values = np.array([s[key] for s in fit.samples if np.isfinite(s[key])])
            if len(values):
                fit.ci[key] = [float(np.percentile(values, lo)), float(np.percentile(values, hi))]
    return fit
