"""Local fits from many starts at once: the batched L-BFGS screens, scipy's L-BFGS-B polishes.

`multistart` is Hoffmann et al.'s approach 3 (L-BFGS from every grid point, keep the lowest
objective): all starts run together in `batched_lbfgs`, then scipy refines the few best distinct
optima so the answer is scipy's to its tolerance. `refit_rows` is the same for many weightings of
the points at once (bootstrap resamples, backtests), each started from a few given θ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from scipy.optimize import minimize

from scalelab.orchestrator.scaling.batched_lbfgs import Settings, minimize_batched
from scalelab.orchestrator.scaling.objective import HuberObjective

# Tighter than scipy's defaults (ftol is in units of max(|f|, 1), and f is ~1e-3 here): the screen
# starts the polish close, and the answer should not depend on where scipy's defaults stop.
POLISH = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9}


# The float32 screen stops where float32 stops resolving the objective; the polish does the rest.
SCREEN = Settings(gtol=1e-6, ftol=1e-7)


@dataclass(frozen=True)
class Optimum:
    objective: float
    theta: np.ndarray


def multistart(objective: HuberObjective, starts: np.ndarray, lower: np.ndarray, upper: np.ndarray,
               keep: int = 5) -> list[Optimum]:
    """The `keep` best distinct local optima from all starts, best first, each polished by scipy.
    The screen runs in float32 (SCREEN); objectives are float64 from the polish on."""
    res = minimize_batched(replace(objective, dtype=np.float32).batch, starts, lower, upper, SCREEN)
    found = [Optimum(float(f), x) for f, x in zip(res.fun, res.x) if np.isfinite(f) and np.all(np.isfinite(x))]
    found.sort(key=lambda o: o.objective)
    # float32 optima of one basin scatter by ~1e-4: call points 1% apart the same basin here.
    candidates = _distinct(found, keep, tol=1e-2)
    best = [_polish(objective, o, lower, upper) for o in candidates]
    return _distinct(sorted(best, key=lambda o: o.objective), keep)


def refit_rows(objective: HuberObjective, starts: np.ndarray, lower: np.ndarray, upper: np.ndarray
               ) -> list[Optional[Optimum]]:
    """For each row of objective.weights (or of its log_targets), the best optimum from every start,
    polished (None: no finite fit). lower / upper are per row, shape (rows, P)."""
    rows = len(objective.weights if objective.weights is not None else objective.log_targets)
    k = len(starts)
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
    """scipy's L-BFGS-B from `start`, in float64 (start's objective may be the float32 screen's)."""
    start = Optimum(objective.one(start.theta, member)[0], start.theta)
    bounds = [(None if np.isinf(lo) else lo, None if np.isinf(hi) else hi) for lo, hi in zip(lower, upper)]
    res = minimize(objective.one, start.theta, args=(member,), jac=True, method="L-BFGS-B", bounds=bounds,
                   options=POLISH)
    if np.isfinite(res.fun) and res.fun <= start.objective:
        return Optimum(float(res.fun), res.x)
    return start


def _distinct(found: list[Optimum], keep: int, tol: float = 1e-4) -> list[Optimum]:
    """The first `keep` optima (in the given order) not within tol (relative) of an earlier one."""
    out: list[Optimum] = []
    for o in found:
        if len(out) == keep:
            break
        if all(np.max(np.abs(o.theta - p.theta)) > tol * (1.0 + np.max(np.abs(p.theta))) for p in out):
            out.append(o)
    return out
