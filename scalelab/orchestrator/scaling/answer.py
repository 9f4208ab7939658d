"""The answer to "how does loss fall as the model gets more data?", in words, with intervals.

For each model size's L(D) fit: how much doubling the data lowers validation loss at the largest
D measured, the irreducible loss E, the loss predicted at 10× that D, and how well the fit predicted
the largest D when it was left out (the backtest). Every interval is the bootstrap percentile
interval of the same quantity computed from each resampled fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from scalelab.orchestrator.scaling.fit import LawFit
from scalelab.orchestrator.scaling.laws import predict_loss
from scalelab.core.human_count import human_count

Interval = Optional[tuple[float, float]]


@dataclass(frozen=True)
class DataAnswer:
    params: float                 # N of this model size
    tokens: float                 # the largest D measured
    unit: str                     # "bpb" or "nats/token"
    doubling_gain: float          # relative loss drop from D to 2D, at the largest D
    doubling_gain_ci: Interval
    irreducible: float            # E
    irreducible_ci: Interval
    predicted_10x: float          # loss at 10 × the largest D
    predicted_10x_ci: Interval
    backtest_error: Optional[float]  # largest relative error on the held-out points


def _interval(values: list[float], level: float) -> Interval:
    finite = np.array([v for v in values if np.isfinite(v)])
    if not len(finite):
        return None
    lo, hi = np.percentile(finite, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def data_answer(fit: LawFit, tokens: float, unit: str) -> DataAnswer:
    """What one size's L(D) fit says at its largest measured D."""
    n = fit.group or 0.0

    def gain(c: dict) -> float:
        here = float(predict_loss(fit.law, c, n, tokens))
        return (here - float(predict_loss(fit.law, c, n, 2 * tokens))) / here

    def at_10x(c: dict) -> float:
        return float(predict_loss(fit.law, c, n, 10 * tokens))

    return DataAnswer(
        params=n, tokens=tokens, unit=unit,
        doubling_gain=gain(fit.constants), doubling_gain_ci=_interval([gain(s) for s in fit.samples], fit.ci_level),
        irreducible=fit.constants.get("E", float("nan")),
        irreducible_ci=tuple(fit.ci["E"]) if "E" in fit.ci else None,
        predicted_10x=at_10x(fit.constants),
        predicted_10x_ci=_interval([at_10x(s) for s in fit.samples], fit.ci_level),
        backtest_error=backtest_error(fit))


def backtest_error(fit: LawFit) -> Optional[float]:
    """The largest relative error of the backtest's predictions; None when there was no backtest."""
    if fit.backtest is None or not fit.backtest.rel_error:
        return None
    return float(max(abs(e) for e in fit.backtest.rel_error))


def _pm(ci: Interval, fmt: str, scale: float = 1.0) -> str:
    return f" [{ci[0] * scale:{fmt}}, {ci[1] * scale:{fmt}}]" if ci else ""


def sentence(a: DataAnswer) -> str:
    """One line a reader can quote."""
    backtest = f"; backtest error {a.backtest_error * 100:.1f}%" if a.backtest_error is not None else \
        "; no backtest (too few points)"
    return (f"at N = {human_count(a.params)}, doubling the data from {human_count(a.tokens)} tokens lowers "
            f"validation loss by {a.doubling_gain * 100:.1f}%{_pm(a.doubling_gain_ci, '.1f', 100)}; "
            f"E = {a.irreducible:.3f}{_pm(a.irreducible_ci, '.3f')} {a.unit}; predicted {a.unit} at 10× the data "
            f"({human_count(10 * a.tokens)} tokens): {a.predicted_10x:.3f}{_pm(a.predicted_10x_ci, '.3f')}{backtest}")


JOINT_FORMS = {
    "kaplan-nd": "L(N, D) = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan et al. 2020, eq. 1.5, for early-stopped runs)",
    "chinchilla": "L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022)",
}


def joint_sentence(fit: LawFit) -> str:
    """A joint L(N, D) fit in one line: its exponents with intervals, R², and its backtest."""
    exponents = [k for k in ("alpha_N", "alpha_D", "alpha", "beta") if k in fit.constants]
    shown = ", ".join(f"{k} = {fit.constants[k]:.3f}{_pm(tuple(fit.ci[k]) if k in fit.ci else None, '.3f')}"
                      for k in exponents)
    error = backtest_error(fit)
    backtest = f"backtest error {error * 100:.1f}%" if error is not None else "no backtest"
    return (f"{JOINT_FORMS.get(fit.law, fit.law)}: E = {fit.constants['E']:.3f}"
            f"{_pm(tuple(fit.ci['E']) if 'E' in fit.ci else None, '.3f')}, {shown}; R² {fit.r2:.4f}; {backtest}")
