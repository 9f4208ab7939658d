"""The fit objective: a Huber loss of log L̂ − log L, summed over points with per-point weights.

Weights are how one objective serves every fit: all ones for the fit itself, and 0 for the points a
backtest holds out. Targets (log L per member and point) replace the measured losses for a residual
bootstrap, whose every member fits its own synthetic losses.
The batched form evaluates many θ at once (the fitter's starts or resamples), each member of the
batch with its own row of weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from scalelab.orchestrator.scaling.laws import Law
from scalelab.orchestrator.scaling.points import Points

HUBER_DELTA = 1e-3  # Hoffmann et al. (2022)
# Members evaluated per pass: a few hundred keeps the (members, points) arrays in cache and in
# reused heap memory; one pass over thousands of starts spends its time faulting in fresh pages.
CHUNK = 256


@dataclass(frozen=True)
class HuberObjective:
    law: Law
    points: Points
    delta: float = HUBER_DELTA
    weights: Optional[np.ndarray] = None  # (members, n); None: every member weighs every point 1
    log_targets: Optional[np.ndarray] = None  # (members, n) of log L; None: the points' measured losses
    # float32 halves the memory traffic of a pass: good enough to screen thousands of starts
    # (the polish that follows is float64); results are returned as float64 either way.
    dtype: type = np.float64

    def batch(self, theta: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Σ_i w_i·huber(r_i) and its gradient for θ (k, P), member k using weight row members[k]."""
        if len(theta) <= CHUNK:
            return self._pass(theta, members)
        parts = [self._pass(theta[i:i + CHUNK], members[i:i + CHUNK]) for i in range(0, len(theta), CHUNK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _pass(self, theta: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = self.points if self.dtype == np.float64 else self.points.astype(self.dtype)
        log_pred, jac = self.law.log_pred_batch(theta.astype(self.dtype), points)
        target = np.log(points.loss) if self.log_targets is None else self.log_targets[members].astype(self.dtype)
        r = log_pred - target
        # huber'(r) is r clipped to ±δ, and huber(r) = huber'(r)·(r − huber'(r)/2) on both branches.
        d_r = np.clip(r, -self.delta, self.delta)
        value = d_r * (r - 0.5 * d_r)
        if self.weights is not None:
            w = self.weights[members].astype(self.dtype)
            value, d_r = value * w, d_r * w
        return value.sum(axis=1, dtype=np.float64), np.einsum("kpn,kn->kp", jac, d_r).astype(np.float64)

    def in_float64(self) -> "HuberObjective":
        return replace(self, dtype=np.float64)

    def one(self, theta: np.ndarray, member: int = 0) -> tuple[float, np.ndarray]:
        """The same for a single θ (P,), as scipy.optimize.minimize(jac=True) calls it."""
        value, grad = self.batch(np.asarray(theta, dtype=float)[None, :], np.array([member]))
        return float(value[0]), grad[0]
