"""L-BFGS for many independent problems at once, in numpy, with box bounds.

A scaling-law fit runs a local optimizer from thousands of starts (Hoffmann et al.'s grid) and
again for every bootstrap resample; one scipy call per start spends nearly all its time in Python
overhead around a tiny objective. Here the S members of a batch are rows of arrays of shape (S, P):
each has its own L-BFGS history, its own line search (weak Wolfe, with expansion, so flat Huber
regions are crossed in a few steps) and its own convergence flag, and the objective is called once
per step for every member still working.

Bounds use a simple active set: a variable at a bound whose gradient pushes outward is held fixed
for the step, and no step goes past the first bound it meets. That is less careful than scipy's
L-BFGS-B (no generalized Cauchy point), so callers that need scipy's exact answer polish the best
few results with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# objective(θ (k, P), members (k,)) -> (f (k,), gradient (k, P)); members index the batch rows.
BatchObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class BatchResult:
    x: np.ndarray          # (S, P) final points
    fun: np.ndarray        # (S,) objective there
    converged: np.ndarray  # (S,) met gtol or ftol (else ran out of iterations or line search)
    iterations: np.ndarray  # (S,)


@dataclass(frozen=True)
class Settings:
    memory: int = 10        # (s, y) pairs kept per member
    max_iter: int = 1000
    gtol: float = 1e-8      # stop when the projected gradient's largest entry is this small
    ftol: float = 1e-10     # ... or when a step lowers f by less than ftol·|f|
    max_ls: int = 30        # objective calls per line search
    c1: float = 1e-4        # Armijo (sufficient decrease)
    c2: float = 0.9         # weak Wolfe curvature


def minimize_batched(fun: BatchObjective, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                     settings: Settings = Settings()) -> BatchResult:
    """Minimize each member from its row of x0 within [lower, upper] ((P,) or (S, P) each)."""
    x = np.array(x0, dtype=float)
    n_members, n_params = x.shape
    lower, upper = (np.broadcast_to(np.asarray(b, dtype=float), x.shape) for b in (lower, upper))
    x = np.clip(x, lower, upper)
    f, g = fun(x, np.arange(n_members))
    hist = _History(settings.memory, n_members, n_params)
    running = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    converged = np.zeros(n_members, dtype=bool)
    iterations = np.zeros(n_members, dtype=int)
    for _ in range(settings.max_iter):
        idx = np.flatnonzero(running)
        if idx.size == 0:
            break
        lo, hi = lower[idx], upper[idx]
        free = _free(x[idx], g[idx], lo, hi)
        pg = np.where(free, g[idx], 0.0)
        small = np.abs(pg).max(axis=1) <= settings.gtol
        converged[idx[small]], running[idx[small]] = True, False
        idx, free, pg, lo, hi = idx[~small], free[~small], pg[~small], lo[~small], hi[~small]
        if idx.size == 0:
            break
        d, fresh = _direction(hist, idx, pg, free, x[idx], lo, hi)
        step = _line_search(fun, idx, x[idx], f[idx], g[idx], d, fresh, lo, hi, settings)
        iterations[idx] += 1
        moved = step.ok
        hist.push(idx[moved], step.x[moved] - x[idx[moved]], step.g[moved] - g[idx[moved]])
        f_old = f[idx]
        x[idx[moved]], f[idx[moved]], g[idx[moved]] = step.x[moved], step.f[moved], step.g[moved]
        flat = moved & (f_old - f[idx] <= settings.ftol * np.maximum(np.abs(f_old), 1e-300))
        converged[idx[flat]] = True
        running[idx[flat | ~moved]] = False  # no acceptable step: as far as this member can go
    return BatchResult(x, f, converged, iterations)


def _free(x, g, lo, hi) -> np.ndarray:
    """Variables not pinned at a bound by a gradient that pushes them out of the box."""
    return ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))


class _History:
    """Every member's last `memory` (s, y) pairs, in one ring shared by all (slot = iteration mod m)."""

    def __init__(self, memory: int, n_members: int, n_params: int):
        self.s = np.zeros((memory, n_members, n_params))
        self.y = np.zeros((memory, n_members, n_params))
        self.rho = np.zeros((memory, n_members))  # 1 / s·y; 0 marks an empty or rejected slot
        self.gamma = np.zeros(n_members)          # s·y / y·y of the newest pair: the initial Hessian scale
        self.pushes = 0

    def order(self) -> list[int]:
        """Slots from newest to oldest."""
        m = self.rho.shape[0]
        return [(self.pushes - 1 - k) % m for k in range(min(self.pushes, m))]

    def push(self, idx: np.ndarray, s: np.ndarray, y: np.ndarray) -> None:
        slot = self.pushes % self.rho.shape[0]
        self.pushes += 1
        self.rho[slot] = 0.0  # members that did not move this round get an empty slot
        sy, yy = (s * y).sum(axis=1), (y * y).sum(axis=1)
        good = sy > 1e-12 * np.sqrt((s * s).sum(axis=1) * yy)  # curvature: keeps the Hessian positive
        self.s[slot, idx], self.y[slot, idx] = s, y
        self.rho[slot, idx] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        self.gamma[idx[good]] = sy[good] / yy[good]

    def reset(self, idx: np.ndarray) -> None:
        self.rho[:, idx] = 0.0
        self.gamma[idx] = 0.0


def _direction(hist: _History, idx, pg, free, x, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The L-BFGS direction −H·g over free variables (two-loop recursion), and which members
    have no curvature history yet (their first step is a scaled steepest descent)."""
    q = pg.copy()
    order = hist.order()
    alphas = []
    for k in order:
        s, y, rho = hist.s[k, idx] * free, hist.y[k, idx] * free, hist.rho[k, idx]
        a = rho * (s * q).sum(axis=1)
        q -= a[:, None] * y
        alphas.append((a, s, y, rho))
    gamma = hist.gamma[idx]
    fresh = gamma <= 0
    r = q * np.where(fresh, 1.0, gamma)[:, None]
    for a, s, y, rho in reversed(alphas):
        b = rho * (y * r).sum(axis=1)
        r += s * (a - b)[:, None]
    d = np.where(free, -r, 0.0)
    d[((x <= lo) & (d < 0)) | ((x >= hi) & (d > 0))] = 0.0  # never step out through a bound
    uphill = ~((d * pg).sum(axis=1) < 0) | ~np.all(np.isfinite(d), axis=1)
    if uphill.any():  # stale curvature: forget it and fall back to steepest descent
        hist.reset(idx[uphill])
        d[uphill], fresh = -pg[uphill], fresh | uphill
    return d, fresh


@dataclass
class _Step:
    x: np.ndarray
    f: np.ndarray
    g: np.ndarray
    ok: np.ndarray  # found a point with sufficient decrease


def _line_search(fun, idx, x, f, g, d, fresh, lo, hi, st: Settings) -> _Step:
    """Search along d for every member: expand ×4 while the decrease is sufficient and the slope still
    steep (weak Wolfe), bisect after an overshoot, never past the first bound."""
    slope = (g * d).sum(axis=1)
    t_max = _max_step(x, d, lo, hi)
    t = np.minimum(np.where(fresh, 1.0 / np.maximum(np.linalg.norm(d, axis=1), 1e-300), 1.0), t_max)
    t_lo, t_hi = np.zeros_like(t), np.full_like(t, np.inf)
    out = _Step(x.copy(), f.copy(), g.copy(), np.zeros(len(idx), dtype=bool))
    searching = t > 0
    for _ in range(st.max_ls):
        j = np.flatnonzero(searching)
        if j.size == 0:
            break
        xt = np.clip(x[j] + t[j, None] * d[j], lo[j], hi[j])
        ft, gt = fun(xt, idx[j])
        sane = np.isfinite(ft) & np.all(np.isfinite(gt), axis=1)
        armijo = sane & (ft <= f[j] + st.c1 * t[j] * slope[j]) & (ft < f[j])
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite trial point is not `sane` anyway
            steep = (gt * d[j]).sum(axis=1) < st.c2 * slope[j]
        better = armijo & (ft <= out.f[j])  # the best sufficient-decrease point so far
        keep = j[better]
        out.x[keep], out.f[keep], out.g[keep], out.ok[keep] = xt[better], ft[better], gt[better], True
        at_bound = t[j] >= t_max[j]
        # Once a step has overshot (t_hi finite), any sufficient decrease will do: insisting on the
        # curvature condition inside the bracket costs more calls than the better pair saves.
        done = armijo & (~steep | at_bound | np.isfinite(t_hi[j]))
        searching[j[done]] = False
        grow, shrink = armijo & steep & ~at_bound, ~armijo
        t_lo[j[grow]], t_hi[j[shrink]] = t[j[grow]], t[j[shrink]]
        tj = np.where(np.isinf(t_hi[j]), 4.0 * t[j], 0.5 * (t_lo[j] + t_hi[j]))
        t[j] = np.minimum(tj, t_max[j])
    return out


def _max_step(x, d, lo, hi) -> np.ndarray:
    """The largest t keeping x + t·d inside [lo, hi], per member (inf where no bound is in the way)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # d = 0 or tiny: no bound that way
        room = np.where(d > 0, (hi - x) / d, np.where(d < 0, (lo - x) / d, np.inf))
    return np.maximum(np.nan_to_num(room, nan=np.inf).min(axis=1), 0.0)
