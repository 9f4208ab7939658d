"""Hoffmann et al. (2022) approach 2: IsoFLOP profiles.

Per budget C, loss against x = ln N is fitted with a parabola L = c2·x² + c1·x + c0 (>= 3 sizes);
its bottom is N*(C) = exp(−c1 / 2c2), and D*(C) = C / flops_per_token(N*) (the FLOPs per token the
runs counted, interpolated in N; 6·N*, C = 6ND, for tables that don't carry them). Then
N* = G·C^a and D* = G'·C^b are fitted by least squares in log-log.

Intervals: a residual bootstrap. The sizes are a design (the planner chose them), not a sample,
and a budget has ~5 of them, so resampling points would often leave fewer than 3 distinct sizes.
Instead each replicate adds resampled residuals to every budget's fitted parabola and refits all
of it, parabolas and power laws, so the power laws' intervals carry the minima's uncertainty.
Residuals are pooled over budgets (the seed-to-seed noise of a loss hardly depends on C), each
scaled by sqrt(n / (n − 3)) for the three coefficients its parabola fitted; a budget of exactly
3 sizes has no residuals to give, and with no residuals anywhere there are no intervals.

Approach 2 is biased when the sizes sit asymmetrically around the optimum or span a wide range
(the valley is not exactly a parabola in ln N); budgets whose minimum falls outside the sizes
trained are flagged as extrapolated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from scalelab.orchestrator.scaling.isoflop_points import RULE_6N, IsoFlopPoints
from scalelab.orchestrator.scaling.points import PointsError

Interval = Optional[tuple[float, float]]


@dataclass(frozen=True)
class BudgetFit:
    """One budget's parabola and its minimum."""

    budget: float
    n_points: int
    coefficients: tuple[float, float, float]  # c2, c1, c0 of L = c2·(ln N)² + c1·ln N + c0
    params_opt: float     # N*(C)
    tokens_opt: float     # D*(C)
    loss_opt: float
    sizes: tuple[float, float]  # smallest and largest N trained
    params_ci: Interval = None
    tokens_ci: Interval = None

    @property
    def extrapolated(self) -> bool:
        return not self.sizes[0] <= self.params_opt <= self.sizes[1]

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        return np.polyval(self.coefficients, np.log(np.asarray(n, dtype=float)))

    def to_json(self) -> dict[str, Any]:
        return {"flops": self.budget, "n_points": self.n_points, "coefficients": list(self.coefficients),
                "params_opt": self.params_opt, "tokens_opt": self.tokens_opt, "loss_opt": self.loss_opt,
                "sizes": list(self.sizes), "params_ci": self.params_ci, "tokens_ci": self.tokens_ci,
                "extrapolated": self.extrapolated}


@dataclass(frozen=True)
class PowerLaw:
    """y = coefficient · C^exponent, fitted in log-log."""

    coefficient: float
    exponent: float
    r2: Optional[float]   # on log y; None with two budgets (the line is exact)
    n_points: int
    coefficient_ci: Interval = None
    exponent_ci: Interval = None

    def __call__(self, flops: np.ndarray | float) -> np.ndarray:
        return self.coefficient * np.asarray(flops, dtype=float) ** self.exponent

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class IsoFlopFit:
    budgets: tuple[BudgetFit, ...]
    params_law: Optional[PowerLaw]   # N*(C) = G·C^a; None with one budget
    tokens_law: Optional[PowerLaw]   # D*(C) = G'·C^b
    n_kind: str                      # which N: non_embedding, all, as given
    d_rule: str                      # how D* was had from N*: flops_per_token or 6N
    ci_level: float
    replicates: int                  # bootstrap replicates behind the intervals (0: none)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"approach": 2, "n_kind": self.n_kind, "d_rule": self.d_rule, "ci_level": self.ci_level,
                "replicates": self.replicates, "budgets": [b.to_json() for b in self.budgets],
                "params_law": self.params_law.to_json() if self.params_law else None,
                "tokens_law": self.tokens_law.to_json() if self.tokens_law else None, "notes": self.notes}


def parabola_minimum(n: np.ndarray, loss: np.ndarray) -> Optional[tuple[np.ndarray, float, float]]:
    """(c2, c1, c0), N*, L* of loss against ln N; None where the parabola has no (finite) minimum."""
    coefficients = np.polyfit(np.log(n), loss, 2)
    c2, c1, _ = coefficients
    if not c2 > 0 or abs(c1) >= 2 * c2 * 700:  # opens downwards, or so flat that e^x* overflows
        return None
    x_opt = -c1 / (2 * c2)
    return coefficients, float(np.exp(x_opt)), float(np.polyval(coefficients, x_opt))


def power_law(flops: np.ndarray, y: np.ndarray) -> PowerLaw:
    slope, intercept = np.polyfit(np.log(flops), np.log(y), 1)
    r2 = None
    if len(flops) > 2:
        resid = np.log(y) - (intercept + slope * np.log(flops))
        ss_tot = float(((np.log(y) - np.log(y).mean()) ** 2).sum())
        r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else None
    return PowerLaw(float(np.exp(intercept)), float(slope), r2, len(flops))


def _budget_fits(points: IsoFlopPoints, notes: list[str]) -> list[BudgetFit]:
    fits = []
    for budget in points.budgets():
        n, loss = points.at_budget(budget)
        if len(np.unique(n)) < 3:
            notes.append(f"C = {budget:.3g}: {len(np.unique(n))} distinct size(s); a parabola needs 3, budget left out")
            continue
        found = parabola_minimum(n, loss)
        if found is None:
            notes.append(f"C = {budget:.3g}: loss against ln N bends downwards (no minimum), budget left out")
            continue
        coefficients, n_opt, l_opt = found
        fit = BudgetFit(float(budget), len(n), tuple(float(c) for c in coefficients), n_opt,
                        float(points.tokens_at(budget, n_opt)), l_opt, (float(n.min()), float(n.max())))
        if fit.extrapolated:
            notes.append(f"C = {budget:.3g}: the minimum N* = {n_opt:.3g} lies outside the sizes trained "
                         f"({fit.sizes[0]:.3g} .. {fit.sizes[1]:.3g}): extrapolated, train sizes nearer it")
        fits.append(fit)
    return fits


def _pooled_residuals(points: IsoFlopPoints, fits: list[BudgetFit]) -> np.ndarray:
    pooled = []
    for f in fits:
        n, loss = points.at_budget(f.budget)
        if len(n) > 3:
            pooled.append((loss - f.predict(n)) * np.sqrt(len(n) / (len(n) - 3)))
    return np.concatenate(pooled) if pooled else np.empty(0)


def _replicate(points: IsoFlopPoints, fits: list[BudgetFit], residuals: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """One bootstrap replicate's N* per budget (NaN where its parabola has no minimum)."""
    out = np.full(len(fits), np.nan)
    for i, f in enumerate(fits):
        n, _ = points.at_budget(f.budget)
        found = parabola_minimum(n, f.predict(n) + rng.choice(residuals, len(n)))
        if found is not None:
            out[i] = found[1]
    return out


def _interval(values: np.ndarray, level: float) -> Interval:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    lo, hi = np.percentile(values, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def _with_law_intervals(law: Optional[PowerLaw], budgets: np.ndarray, samples: np.ndarray,
                        level: float) -> Optional[PowerLaw]:
    if law is None:
        return None
    coefficients, exponents = [], []
    for row in samples:
        ok = np.isfinite(row)
        if ok.sum() >= 2:
            fitted = power_law(budgets[ok], row[ok])
            coefficients.append(fitted.coefficient)
            exponents.append(fitted.exponent)
    return dataclasses.replace(law, coefficient_ci=_interval(np.array(coefficients), level),
                               exponent_ci=_interval(np.array(exponents), level))


def fit_isoflop(points: IsoFlopPoints, bootstrap: int = 200, seed: int = 0, ci_level: float = 0.95) -> IsoFlopFit:
    """Approach 2 on the points: parabolas per budget, power laws over budgets, bootstrap intervals."""
    notes: list[str] = []
    if points.d_rule == RULE_6N:
        notes.append("no FLOPs per token in the table: D* = C / (6·N*), i.e. C = 6ND")
    fits = _budget_fits(points, notes)
    if not fits:
        raise PointsError(f"{points.source}: no budget has a loss minimum over >= 3 sizes; "
                          f"approach 2 has nothing to fit")
    budgets = np.array([f.budget for f in fits])
    n_opt = np.array([f.params_opt for f in fits])
    d_opt = np.array([f.tokens_opt for f in fits])
    params_law = power_law(budgets, n_opt) if len(fits) >= 2 else None
    tokens_law = power_law(budgets, d_opt) if len(fits) >= 2 else None
    residuals = _pooled_residuals(points, fits)
    replicates = bootstrap if len(residuals) and bootstrap > 0 else 0
    if bootstrap > 0 and not replicates:
        notes.append("no intervals: every budget has exactly 3 sizes, so its parabola leaves no residuals")
    if replicates:
        rng = np.random.default_rng(seed)
        n_samples = np.array([_replicate(points, fits, residuals, rng) for _ in range(replicates)])
        d_samples = np.array([[points.tokens_at(c, n) if np.isfinite(n) else np.nan for c, n in zip(budgets, row)]
                              for row in n_samples])
        for f, missing in zip(fits, np.isnan(n_samples).sum(axis=0)):
            if missing:
                notes.append(f"C = {f.budget:.3g}: {missing} of {replicates} bootstrap parabolas had no minimum; "
                             f"its intervals are over the rest")
        fits = [dataclasses.replace(f, params_ci=_interval(n_samples[:, i], ci_level),
                                    tokens_ci=_interval(d_samples[:, i], ci_level)) for i, f in enumerate(fits)]
        params_law = _with_law_intervals(params_law, budgets, n_samples, ci_level)
        tokens_law = _with_law_intervals(tokens_law, budgets, d_samples, ci_level)
    return IsoFlopFit(tuple(fits), params_law, tokens_law, points.n_kind, points.d_rule, ci_level, replicates, notes)
