"""Fitting a law to points: Huber loss on log L, L-BFGS from every grid start, bootstrap intervals,
and a backtest.

`fit_law` runs L-BFGS from every point of the law's grid and keeps the lowest objective (Hoffmann
et al. 2022, approach 3; Huber δ = 1e-3), all starts at once (see multistart.py). θ stays in the
law's box (E at most the lowest observed loss, exponents in [0, 2.5]); a constant that ends on its
bound gets a note. Bootstrap intervals resample the points (runs) with replacement and refit each
resample from the full fit's best few optima, not the whole grid: the resamples sit near the full
fit. A resample is a row of per-point counts, so all resamples are fitted together as one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from scalelab.orchestrator.scaling.backtest import Backtest, backtest
from scalelab.orchestrator.scaling.laws import Law
from scalelab.orchestrator.scaling.multistart import Optimum, multistart, refit_rows
from scalelab.orchestrator.scaling.objective import HUBER_DELTA, HuberObjective
from scalelab.orchestrator.scaling.points import Points, PointsError

__all__ = ["HUBER_DELTA", "LawFit", "fit_law", "r_squared"]

# θ name -> (constant it bounds, how θ maps to the constant): for the bounds a fit reports.
_BOUNDED = {"alpha": ("alpha", float), "beta": ("beta", float), "alpha_D": ("alpha_D", float),
            "alpha_N": ("alpha_N", float),
            "e": ("E", math.exp), "log_r_star": ("R_star", math.exp)}


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
    family: Optional[str] = None   # the model family of the runs fitted (a sweep's; None: a generic table)
    notes: list[str] = field(default_factory=list)
    bounds: dict[str, list[float]] = field(default_factory=dict)  # constant -> [low, high] it was fitted in
    backtest: Optional[Backtest] = None

    def to_json(self, with_samples: bool = False) -> dict[str, Any]:
        """Plain JSON types; non-finite numbers are left for finite_json to turn into null."""
        out: dict[str, Any] = {"law": self.law, **self.constants, "ci": self.ci, "ci_level": self.ci_level,
                               "r2": self.r2, "n_points": self.n_points, "bounds": self.bounds,
                               "backtest": self.backtest.to_json() if self.backtest else None,
                               "residuals": self.residuals}
        if self.group is not None:
            out["params"] = self.group
        if self.family is not None:
            out["family"] = self.family
        if self.notes:
            out["notes"] = self.notes
        if with_samples:
            out["samples"] = self.samples
        return out


def r_squared(law: Law, theta: np.ndarray, points: Points) -> tuple[float, np.ndarray]:
    log_pred, _ = law.log_pred(theta, points)
    log_obs = np.log(points.loss)
    ss_res = float(((log_obs - log_pred) ** 2).sum())
    ss_tot = float(((log_obs - log_obs.mean()) ** 2).sum())
    return (1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan"), log_pred


def check_fittable(law: Law, points: Points) -> None:
    n_theta = len(law.theta_names)
    if len(np.unique(np.stack([points.params, points.tokens, points.epochs]), axis=1).T) < n_theta:
        raise PointsError(f"{points.source}: {len(points)} point(s) with {len(set(zip(points.params, points.tokens)))} "
                          f"distinct (N, D): the {law.name} law has {n_theta} parameters and needs at least "
                          f"{n_theta} distinct points")
    if np.ptp(points.loss) == 0:
        raise PointsError(f"{points.source}: all {len(points)} losses are equal ({points.loss[0]:.6g}): "
                          f"there is no trend for the {law.name} law to fit")


def fit_law(law: Law, points: Points, bootstrap: int = 100, seed: int = 0, ci_level: float = 0.95,
            delta: float = HUBER_DELTA, keep_starts: int = 5) -> LawFit:
    check_fittable(law, points)
    lower, upper = law.bounds(points)
    optima = multistart(HuberObjective(law, points, delta), np.array(law.grid, dtype=float), lower, upper,
                        keep=keep_starts)
    if not optima:
        raise PointsError(f"{points.source}: the {law.name} fit did not converge from any start")
    best = optima[0]
    r2, log_pred = r_squared(law, best.theta, points)
    residuals = [{"label": lab, "params": float(n), "tokens": float(d), "loss": float(l), "predicted": float(np.exp(lp)),
                  "log_residual": float(np.log(l) - lp)}
                 for lab, n, d, l, lp in zip(points.labels, points.params, points.tokens, points.loss, log_pred)]
    fit = LawFit(law=law.name, constants=law.constants(best.theta), theta=best.theta, objective=best.objective,
                 r2=r2, residuals=residuals, n_points=len(points), ci_level=ci_level,
                 notes=list(points.notes), bounds=_constant_bounds(law, lower, upper), family=points.family)
    fit.notes += _bound_notes(law, best.theta, lower, upper)
    if law.joint:
        fit.notes += _span_notes(points)
    if bootstrap > 0:
        fit.samples = _bootstrap(law, points, optima, bootstrap, seed, delta)
        fit.ci = _intervals(fit.constants, fit.samples, ci_level)
    fit.backtest, why = backtest(law, points, optima, delta)
    if why:
        fit.notes.append(why)
    return fit


def _bootstrap(law: Law, points: Points, optima: list[Optimum], resamples: int, seed: int,
               delta: float) -> list[dict[str, float]]:
    """Constants of `resamples` refits, each to the fit's predictions plus resampled residuals.

    The points of a sweep are a designed grid (the experimenter chose each N and D), so the
    intervals resample the fit's log residuals onto its predictions (the residual bootstrap, Efron &
    Tibshirani 1993, §9.5) instead of drawing points with replacement: from five points, most draws
    would keep fewer distinct D than the law has constants, and the interval would only say so. The
    residuals are centred and scaled by sqrt(n / (n − p)) for the p constants they were fitted with
    (Davison & Hinkley 1997, §6.2).
    """
    rng = np.random.default_rng(seed)
    best = optima[0].theta
    log_pred, _ = law.log_pred(best, points)
    n, p = len(points), len(law.theta_names)
    residuals = np.log(points.loss) - log_pred
    residuals = (residuals - residuals.mean()) * math.sqrt(n / max(1, n - p))
    targets = log_pred[None, :] + residuals[rng.integers(0, n, (resamples, n))]
    upper_e = np.log(np.exp(targets).min(axis=1))  # E stays below each resample's own lowest loss
    lower, upper = law.bounds(points)
    lower, upper = np.tile(lower, (resamples, 1)), np.tile(upper, (resamples, 1))
    if "e" in law.theta_names:
        upper[:, law.theta_names.index("e")] = upper_e
    objective = HuberObjective(law, points, delta, log_targets=targets)
    refits = refit_rows(objective, np.array([o.theta for o in optima]), lower, upper)
    return [law.constants(r.theta) for r in refits if r is not None]


def _intervals(constants: dict[str, float], samples: list[dict[str, float]], level: float) -> dict[str, list[float]]:
    """Percentile interval for every constant (NaN ends where no sample gave a finite value)."""
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = {}
    for key in constants:
        values = np.array([s[key] for s in samples if np.isfinite(s[key])])
        out[key] = [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if len(values) \
            else [math.nan, math.nan]
    return out


def _constant_bounds(law: Law, lower: np.ndarray, upper: np.ndarray) -> dict[str, list[float]]:
    out = {}
    for name, lo, hi in zip(law.theta_names, lower, upper):
        if name in _BOUNDED:
            key, to_constant = _BOUNDED[name]
            out[key] = [0.0 if np.isinf(lo) else to_constant(lo), math.inf if np.isinf(hi) else to_constant(hi)]
    return out


def _bound_notes(law: Law, theta: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> list[str]:
    notes = []
    for name, value, lo, hi in zip(law.theta_names, theta, lower, upper):
        if name in _BOUNDED and (np.isclose(value, lo, atol=1e-6) or np.isclose(value, hi, atol=1e-6)):
            key, to_constant = _BOUNDED[name]
            notes.append(f"{key} = {to_constant(value):.4g} sits on its bound: the points do not pin it down "
                         f"inside the allowed range")
    return notes


def _span_notes(points: Points) -> list[str]:
    smallest, largest = float(points.params.min()), float(points.params.max())
    if largest < 10 * smallest:
        return [f"model sizes span less than a decade (N from {smallest:.4g} to {largest:.4g}): α and E trade "
                f"off against each other, so read them (and extrapolations in N) with care"]
    return []
