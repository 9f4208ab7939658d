"""The laws, each as a function of its fit parameters θ giving log L and its gradient.

Following Hoffmann et al. (2022, approach 3), every law is fitted in log space: terms are written as
exponentials of linear functions (A / N^α = exp(a − α log N)), log L is a log-sum-exp of them, and the
fit minimizes a Huber loss of log L̂ − log L. Each law names its fit parameters, the grid of starting
points L-BFGS runs from, and how θ maps to the constants users read (E, A, B, α, β, ...).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from orchestrator.scaling.points import Points


def lse_and_weights(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log Σ exp(terms) over axis 0, and the softmax weights (its gradient wrt each term)."""
    top = terms.max(axis=0)
    ex = np.exp(terms - top)
    total = ex.sum(axis=0)
    return top + np.log(total), ex / total


@dataclass(frozen=True)
class Law:
    name: str
    theta_names: tuple[str, ...]
    grid: list[tuple[float, ...]]
    # θ, points -> (log L̂ per point, d log L̂ / dθ with shape (len θ, points))
    log_pred: Callable[[np.ndarray, Points], tuple[np.ndarray, np.ndarray]]
    constants: Callable[[np.ndarray], dict[str, float]]


def _grid(**axes: list[float]) -> list[tuple[float, ...]]:
    return list(itertools.product(*axes.values()))


# L(N, D) = E + A / N^α + B / D^β  (Hoffmann et al. 2022)
def _chinchilla_pred(t: np.ndarray, p: Points):
    a, alpha, b, beta, e = t
    ln_n, ln_d = np.log(p.params), np.log(p.tokens)
    lse, w = lse_and_weights(np.stack([a - alpha * ln_n, b - beta * ln_d, np.full_like(ln_n, e)]))
    return lse, np.stack([w[0], -w[0] * ln_n, w[1], -w[1] * ln_d, w[2]])


CHINCHILLA = Law(
    name="chinchilla", theta_names=("a", "alpha", "b", "beta", "e"),
    # Hoffmann et al.'s grid: α, β ∈ {0, 0.5, ..., 2}, e ∈ {−1, −0.5, ..., 1}, a, b ∈ {0, 5, ..., 25}.
    grid=_grid(a=[0, 5, 10, 15, 20, 25], alpha=[0, 0.5, 1, 1.5, 2], b=[0, 5, 10, 15, 20, 25],
               beta=[0, 0.5, 1, 1.5, 2], e=[-1, -0.5, 0, 0.5, 1]),
    log_pred=_chinchilla_pred,
    constants=lambda t: {"E": math.exp(t[4]), "A": math.exp(t[0]), "B": math.exp(t[2]),
                         "alpha": float(t[1]), "beta": float(t[3])},
)


# L(D) = E + B / D^β for one model size.
def _data_pred(t: np.ndarray, p: Points):
    b, beta, e = t
    ln_d = np.log(p.tokens)
    lse, w = lse_and_weights(np.stack([b - beta * ln_d, np.full_like(ln_d, e)]))
    return lse, np.stack([w[0], -w[0] * ln_d, w[1]])


DATA = Law(
    name="data", theta_names=("b", "beta", "e"),
    grid=_grid(b=[0, 5, 10, 15, 20, 25], beta=[0, 0.5, 1, 1.5, 2], e=[-1, -0.5, 0, 0.5, 1]),
    log_pred=_data_pred,
    constants=lambda t: {"E": math.exp(t[2]), "B": math.exp(t[0]), "beta": float(t[1])},
)


# L(D) = (D_c / D)^α_D (Kaplan et al. 2020): log L = α_D log D_c − α_D log D, a line in log-log.
def _kaplan_pred(t: np.ndarray, p: Points):
    c, alpha = t
    ln_d = np.log(p.tokens)
    return c - alpha * ln_d, np.stack([np.ones_like(ln_d), -ln_d])


KAPLAN_DATA = Law(
    name="kaplan", theta_names=("c", "alpha_D"),
    grid=_grid(c=[0, 1, 2, 5], alpha=[0.05, 0.1, 0.3, 1.0]),
    log_pred=_kaplan_pred,
    constants=lambda t: {"D_c": math.exp(t[0] / t[1]) if t[1] > 1e-12 else math.inf, "alpha_D": float(t[1])},
)

# Muennighoff et al. (2023): repeated data is worth less. With U unique tokens seen for 1 + R
# epochs, the effective data is D' = U + U·R*·(1 − exp(−R / R*)); then L = E + A / N^α + B / D'^β.
R_STAR_PUBLISHED = 15.4  # their fitted R*_D, used when no run repeated its data (R* is then unidentifiable)


def effective_tokens(unique: np.ndarray, epochs: np.ndarray, r_star: float) -> np.ndarray:
    repeats = np.maximum(epochs - 1.0, 0.0)
    return unique + unique * r_star * (1.0 - np.exp(-repeats / r_star))


def data_constrained_law(fit_r_star: bool) -> Law:
    def pred(t: np.ndarray, p: Points):
        a, alpha, b, beta, e = t[:5]
        r_star = math.exp(t[5]) if fit_r_star else R_STAR_PUBLISHED
        d_eff = effective_tokens(p.tokens, p.epochs, r_star)
        ln_n, ln_d = np.log(p.params), np.log(d_eff)
        lse, w = lse_and_weights(np.stack([a - alpha * ln_n, b - beta * ln_d, np.full_like(ln_n, e)]))
        grads = [w[0], -w[0] * ln_n, w[1], -w[1] * ln_d, w[2]]
        if fit_r_star:
            x = np.maximum(p.epochs - 1.0, 0.0) / r_star
            d_dr = p.tokens * r_star * (1.0 - np.exp(-x) * (1.0 + x))  # dD'/d log R*
            grads.append(-beta * w[1] * d_dr / d_eff)
        return lse, np.stack(grads)

    def constants(t: np.ndarray) -> dict[str, float]:
        out = CHINCHILLA.constants(t[:5])
        out["R_star"] = math.exp(t[5]) if fit_r_star else R_STAR_PUBLISHED
        return out

    base = CHINCHILLA.grid[:: max(1, len(CHINCHILLA.grid) // 600)]  # a thinned grid: 6 parameters
    grid = [g + (math.log(r),) for g in base for r in (3.0, 15.0, 50.0)] if fit_r_star else base
    return Law(name="data-constrained", theta_names=CHINCHILLA.theta_names + (("log_r_star",) if fit_r_star else ()),
               grid=grid, log_pred=pred, constants=constants)


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
    raise ValueError(f"unknown law {law!r}")
