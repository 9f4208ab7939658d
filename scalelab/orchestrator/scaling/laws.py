"""The laws, each as a function of its fit parameters θ giving log L and its gradient.

Following Hoffmann et al. (2022, approach 3), every law is fitted in log space: terms are written as
exponentials of linear functions (A / N^α = exp(a − α log N)), log L is a log-sum-exp of them, and the
fit minimizes a Huber loss of log L̂ − log L. Each law names its fit parameters, the grid of starting
points L-BFGS runs from, the box θ is kept in, and how θ maps to the constants users read.

The prediction functions are batched: θ has shape (S, P) (S candidate parameter vectors, evaluated
together by the batched fitter) and they return log L̂ of shape (S, n) and its Jacobian (S, P, n).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from scalelab.orchestrator.scaling.points import Points

# Exponents (α, β, α_D) are kept in this range: beyond it a "power law" is a fit to noise.
EXPONENT_RANGE = (0.0, 2.5)
# R* (Muennighoff et al.): repeats worth something from a tenth of an epoch to ten thousand epochs.
LOG_R_STAR_RANGE = (math.log(0.1), math.log(1e4))
# Kaplan's N_c and D_c (as logs): from 1e-20 to 1e60, far past any model or data set, and finite.
LOG_SCALE_RANGE = (math.log(1e-20), math.log(1e60))


def log_sum_exp(terms: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """log Σ_k exp(terms[k]) per member and point, terms each (S, n) or (S, 1); the softmax weights
    (its gradient wrt each term) are written into `weights`, arrays of shape (S, n).

    The shift that keeps exp from overflowing is one number per member (its largest term over all
    points), not one per point: it is as safe against overflow, and a term constant across points
    (E) is then exponentiated once per member instead of once per point."""
    shift = np.maximum.reduce([t.max(axis=1, keepdims=True) for t in terms])
    total = np.zeros(weights[0].shape, dtype=weights[0].dtype)
    for t, w in zip(terms, weights):
        w[...] = np.exp(t - shift)
        total += w
    inv = 1.0 / total
    for w in weights:
        w *= inv
    np.log(total, out=total)
    return total + shift


@dataclass(frozen=True)
class Law:
    name: str
    theta_names: tuple[str, ...]
    grid: list[tuple[float, ...]]
    # θ (S, P), points -> (log L̂ (S, n), d log L̂ / dθ (S, P, n))
    log_pred_batch: Callable[[np.ndarray, Points], tuple[np.ndarray, np.ndarray]]
    constants: Callable[[np.ndarray], dict[str, float]]
    joint: bool = False  # a law in N and D, fitted across model sizes (else L(D) for one size)

    def log_pred(self, theta: np.ndarray, points: Points) -> tuple[np.ndarray, np.ndarray]:
        """log L̂ and its Jacobian for one θ (P,) -> (n,), (P, n), or a batch (S, P) -> (S, n), (S, P, n)."""
        theta = np.asarray(theta, dtype=float)
        if theta.ndim == 2:
            return self.log_pred_batch(theta, points)
        pred, jac = self.log_pred_batch(theta[None, :], points)
        return pred[0], jac[0]

    def bounds(self, points: Points) -> tuple[np.ndarray, np.ndarray]:
        """The box θ is fitted in: E in (0, min observed loss], exponents in EXPONENT_RANGE."""
        lower, upper = np.full(len(self.theta_names), -np.inf), np.full(len(self.theta_names), np.inf)
        for i, name in enumerate(self.theta_names):
            if name in ("alpha", "beta", "alpha_D", "alpha_N"):
                lower[i], upper[i] = EXPONENT_RANGE
                if name == "alpha_D" and "alpha_N" in self.theta_names:
                    lower[i] = 0.01  # kaplan-nd divides by α_D
            elif name == "e":  # E = exp(e) > 0 always; above the lowest loss it could never be reached
                upper[i] = math.log(float(points.loss.min()))
            elif name == "log_r_star":
                lower[i], upper[i] = LOG_R_STAR_RANGE
            elif name in ("c_N", "c_D"):  # log N_c, log D_c: any scale a float can hold
                lower[i], upper[i] = LOG_SCALE_RANGE
        return lower, upper


def _grid(**axes: list[float]) -> list[tuple[float, ...]]:
    return list(itertools.product(*axes.values()))


def _col(t: np.ndarray, i: int) -> np.ndarray:
    return t[:, i:i + 1]  # (S, 1): broadcasts against (n,) per-point columns


def _three_term_pred(a, alpha, ln_n, b, beta, ln_d, e, extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """log(A/N^α + B/D^β + E) with a, α, b, β, e of shape (S, 1) and ln N, ln D of shape (n,) or (S, n),
    and its Jacobian (S, 5 + extra, n) wrt (a, α, b, β, e); `extra` rows are left for the caller."""
    n_term, d_term = a - alpha * ln_n, b - beta * ln_d
    jac = np.empty((n_term.shape[0], 5 + extra, n_term.shape[1]), dtype=n_term.dtype)
    lse = log_sum_exp([n_term, d_term, e], [jac[:, 0], jac[:, 2], jac[:, 4]])
    np.multiply(jac[:, 0], -ln_n, out=jac[:, 1])
    np.multiply(jac[:, 2], -ln_d, out=jac[:, 3])
    return lse, jac


# L(N, D) = E + A / N^α + B / D^β  (Hoffmann et al. 2022)
def _chinchilla_pred(t: np.ndarray, p: Points):
    return _three_term_pred(_col(t, 0), _col(t, 1), np.log(p.params), _col(t, 2), _col(t, 3), np.log(p.tokens),
                            _col(t, 4))


CHINCHILLA = Law(
    name="chinchilla", theta_names=("a", "alpha", "b", "beta", "e"),
    # Hoffmann et al.'s grid: α, β ∈ {0, 0.5, ..., 2}, e ∈ {−1, −0.5, ..., 1}, a, b ∈ {0, 5, ..., 25}.
    grid=_grid(a=[0, 5, 10, 15, 20, 25], alpha=[0, 0.5, 1, 1.5, 2], b=[0, 5, 10, 15, 20, 25],
               beta=[0, 0.5, 1, 1.5, 2], e=[-1, -0.5, 0, 0.5, 1]),
    log_pred_batch=_chinchilla_pred,
    constants=lambda t: {"E": math.exp(t[4]), "A": math.exp(t[0]), "B": math.exp(t[2]),
                         "alpha": float(t[1]), "beta": float(t[3])},
    joint=True,
)


# L(D) = E + B / D^β for one model size.
def _data_pred(t: np.ndarray, p: Points):
    ln_d = np.log(p.tokens)
    jac = np.empty((t.shape[0], 3, ln_d.size), dtype=np.result_type(t, ln_d))
    lse = log_sum_exp([_col(t, 0) - _col(t, 1) * ln_d, _col(t, 2)], [jac[:, 0], jac[:, 2]])
    np.multiply(jac[:, 0], -ln_d, out=jac[:, 1])
    return lse, jac


DATA = Law(
    name="data", theta_names=("b", "beta", "e"),
    grid=_grid(b=[0, 5, 10, 15, 20, 25], beta=[0, 0.5, 1, 1.5, 2], e=[-1, -0.5, 0, 0.5, 1]),
    log_pred_batch=_data_pred,
    constants=lambda t: {"E": math.exp(t[2]), "B": math.exp(t[0]), "beta": float(t[1])},
)


# L(D) = (D_c / D)^α_D (Kaplan et al. 2020): log L = α_D log D_c − α_D log D, a line in log-log.
def _kaplan_pred(t: np.ndarray, p: Points):
    ln_d = np.log(p.tokens)
    ones = np.ones((t.shape[0], ln_d.size), dtype=np.result_type(t, ln_d))
    return _col(t, 0) - _col(t, 1) * ln_d, np.stack([ones, -ones * ln_d], axis=1)


KAPLAN_DATA = Law(
    name="kaplan", theta_names=("c", "alpha_D"),
    grid=_grid(c=[0, 1, 2, 5], alpha=[0.05, 0.1, 0.3, 1.0]),
    log_pred_batch=_kaplan_pred,
    constants=lambda t: {"D_c": math.exp(t[0] / t[1]) if t[1] > 1e-12 else math.inf, "alpha_D": float(t[1])},
)

# L(N, D) = E + [(N_c / N)^(α_N / α_D) + D_c / D]^α_D: Kaplan et al. (2020, eq. 1.5) with an
# irreducible term. Kaplan et al. designed this form for runs early-stopped on a data set of D tokens:
# at small D every size gives the same loss (the data limits them all), at large D each size flattens
# to its own floor. Chinchilla's additive form can't express that interaction.
#   log L = LSE(e, α_D · LSE(u_N, u_D)),  u_N = (α_N / α_D)(c_N − ln N),  u_D = c_D − ln D
def _kaplan_nd_pred(t: np.ndarray, p: Points):
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # far starts overflow; the fitter drops them
        return _kaplan_nd_terms(t, p)


def _kaplan_nd_terms(t: np.ndarray, p: Points):
    c_n, alpha_n, c_d, alpha_d, e = (_col(t, i) for i in range(5))
    ln_n, ln_d = np.log(p.params), np.log(p.tokens)
    u_n = (alpha_n / alpha_d) * (c_n - ln_n)
    u_d = np.broadcast_to(c_d - ln_d, u_n.shape)
    w_n, w_d = np.empty_like(u_n), np.empty_like(u_n)
    inner = log_sum_exp([u_n, u_d], [w_n, w_d])
    v_e, v_k = np.empty_like(u_n), np.empty_like(u_n)
    lse = log_sum_exp([np.broadcast_to(e, u_n.shape), alpha_d * inner], [v_e, v_k])
    jac = np.stack([v_k * w_n * alpha_n,              # d/d c_N
                    v_k * w_n * (c_n - ln_n),         # d/d α_N
                    v_k * alpha_d * w_d,              # d/d c_D
                    v_k * (inner - w_n * u_n),        # d/d α_D
                    v_e], axis=1)                     # d/d e
    return lse, jac


KAPLAN_ND = Law(
    name="kaplan-nd", theta_names=("c_N", "alpha_N", "c_D", "alpha_D", "e"),
    grid=_grid(c_n=[5, 10, 15, 20, 25], alpha_n=[0.1, 0.3, 0.6, 1.0], c_d=[5, 10, 15, 20, 25],
               alpha_d=[0.1, 0.3, 0.6, 1.0], e=[-1, 0, 0.5, 1]),
    log_pred_batch=_kaplan_nd_pred,
    constants=lambda t: {"E": math.exp(t[4]), "N_c": math.exp(t[0]), "alpha_N": float(t[1]),
                         "D_c": math.exp(t[2]), "alpha_D": float(t[3])},
    joint=True,
)


# Muennighoff et al. (2023): repeated data is worth less. With U unique tokens seen for 1 + R
# epochs, the effective data is D' = U + U·R*·(1 − exp(−R / R*)); then L = E + A / N^α + B / D'^β.
R_STAR_PUBLISHED = 15.4  # their fitted R*_D, used when no run repeated its data (R* is then unidentifiable)


def effective_tokens(unique: np.ndarray, epochs: np.ndarray, r_star: float | np.ndarray) -> np.ndarray:
    repeats = np.maximum(epochs - 1.0, 0.0)
    return unique + unique * r_star * (1.0 - np.exp(-repeats / r_star))


def data_constrained_law(fit_r_star: bool) -> Law:
    def pred(t: np.ndarray, p: Points):
        r_star = np.exp(_col(t, 5)) if fit_r_star else R_STAR_PUBLISHED
        d_eff = effective_tokens(p.tokens, p.epochs, r_star)  # (S, n) when R* is fitted, else (n,)
        lse, jac = _three_term_pred(_col(t, 0), _col(t, 1), np.log(p.params), _col(t, 2), _col(t, 3),
                                    np.log(d_eff), _col(t, 4), extra=int(fit_r_star))
        if fit_r_star:
            x = np.maximum(p.epochs - 1.0, 0.0) / r_star
            d_dr = p.tokens * r_star * (1.0 - np.exp(-x) * (1.0 + x))  # dD'/d log R*
            jac[:, 5] = -_col(t, 3) * jac[:, 2] * d_dr / d_eff
        return lse, jac

    def constants(t: np.ndarray) -> dict[str, float]:
        out = CHINCHILLA.constants(t[:5])
        out["R_star"] = math.exp(t[5]) if fit_r_star else R_STAR_PUBLISHED
        return out

    base = CHINCHILLA.grid[:: max(1, len(CHINCHILLA.grid) // 600)]  # a thinned grid: 6 parameters
    grid = [g + (math.log(r),) for g in base for r in (3.0, 15.0, 50.0)] if fit_r_star else base
    return Law(name="data-constrained", theta_names=CHINCHILLA.theta_names + (("log_r_star",) if fit_r_star else ()),
               grid=grid, log_pred_batch=pred, constants=constants, joint=True)


def predict_loss(law: str, c: dict[str, float], params: np.ndarray | float, tokens: np.ndarray | float,
                 epochs: np.ndarray | float = 1.0) -> np.ndarray:
    """Loss from fitted constants (the user-facing ones) at N params and D unique tokens."""
    n, d, ep = (np.asarray(v, dtype=float) for v in (params, tokens, epochs))
    if law == "chinchilla":
        return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d ** c["beta"]
    if law == "data":
        return c["E"] + c["B"] / d ** c["beta"] + 0.0 * n
    if law == "kaplan":
        return (c["D_c"] / d) ** c["alpha_D"] + 0.0 * n
    if law == "data-constrained":
        return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / effective_tokens(d, ep, c["R_star"]) ** c["beta"]
    if law == "kaplan-nd":
        return c["E"] + ((c["N_c"] / n) ** (c["alpha_N"] / c["alpha_D"]) + c["D_c"] / d) ** c["alpha_D"]
    raise ValueError(f"unknown law {law!r}")
