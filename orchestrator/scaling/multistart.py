"""Local fits from many starts at once: the batched L-BFGS screens, scipy's L-BFGS-B polishes.

`multistart` is Hoffmann et al.'s approach 3 (L-BFGS from every grid point, keep the lowest
objective): all starts run together in `batched_lbfgs`, then scipy refines the few best distinct
optima so the answer is scipy's to its tolerance. `refit_rows` is the same for many weightings of
the points at once (bootstrap resamples, backtests), each started from a few given θ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import minimize

from orchestrator.scaling.batched_lbfgs import minimize_batched
from orchestrator.scaling.objective import HuberObjective

POLISH = {"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-12}  # tighter than scipy's defaults: the screen is close


@dataclass(frozen=True)
class Optimum:
    objective: float
    theta: np.ndarray


def multistart(objective: HuberObjective, starts: np.ndarray, lower: np.ndarray, upper: np.ndarray,
               keep: int = 5, polish: int = 3) -> list[Optimum]:
    """The `keep` best distinct local optima from all starts, best first; the best `polish` refined."""
    res = minimize_batched(objective.batch, starts, lower, upper)
    found = [Optimum(float(f), x) for f, x in zip(res.fun, res.x) if np.isfinite(f) and np.all(np.isfinite(x))]
    found.sort(key=lambda o: o.objective)
    best = _distinct(found, keep)
    polished = [_polish(objective, o, lower, upper) for o in best[:polish]]
    return _distinct(sorted(polished, key=lambda o: o.objective) + best[polish:], keep)


def refit_rows(objective: HuberObjective, starts: np.ndarray, lower: np.ndarray, upper: np.ndarray
               ) -> list[Optional[Optimum]]:
    """For each row of objective.weights, the best optimum from every start, polished (None: no finite fit).
    lower / upper are per row, shape (rows, P)."""
    rows, k = len(objective.weights), len(starts)
    member_row = np.repeat(np.arange(rows), k)  # member m fits row m // k from start m % k
    x0 = np.tile(starts, (rows, 1))
    res = minimize_batched(lambda x, m: objective.batch(x, member_row[m]), x0, lower[member_row], upper[member_row])
    fun = np.where(np.isfinite(res.fun), res.fun, np.inf).reshape(rows, k)
    out: list[Optional[Optimum]] = []
    for row in range(rows):
        j = int(np.argmin(fun[row]))
        if not np.isfinite(fun[row, j]):
            out.append(None)
            continue
        screened = Optimum(float(fun[row, j]), res.x[row * k + j])
        out.append(_polish(objective, screened, lower[row], upper[row], member=row))
    return out


def _polish(objective: HuberObjective, start: Optimum, lower: np.ndarray, upper: np.ndarray,
            member: int = 0) -> Optimum:
    bounds = [(None if np.isinf(lo) else lo, None if np.isinf(hi) else hi) for lo, hi in zip(lower, upper)]
    res = minimize(objective.one, start.theta, args=(member,), jac=True, method="L-BFGS-B", bounds=bounds,
                   options=POLISH)
    if np.isfinite(res.fun) and res.fun <= start.objective:
        return Optimum(float(res.fun), res.x)
    return start


def _distinct(found: list[Optimum], keep: int) -> list[Optimum]:
    """The first `keep` optima (in the given order) that are not the same point as an earlier one."""
    out: list[Optimum] = []
    for o in found:
        if len(out) == keep:
            break
        if all(np.max(np.abs(o.theta - p.theta)) > 1e-4 * (1.0 + np.max(np.abs(p.theta))) for p in out):
            out.append(o)
    return out
