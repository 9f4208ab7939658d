"""`plots/isoflop.png`: the IsoFLOP valleys and the optimal size against compute.

Left: loss against N (log x) per budget, the fitted parabolas, their minima (with the bootstrap
interval of N*). Right: N*(C) with its interval, the power law N* = G·C^a, and approach 3's optima
when a Chinchilla fit of the same runs exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scalelab.orchestrator.scaling.isoflop_compare import Comparison  # noqa: E402
from scalelab.orchestrator.scaling.isoflop_fit import IsoFlopFit  # noqa: E402
from scalelab.orchestrator.scaling.isoflop_points import IsoFlopPoints  # noqa: E402
from scalelab.core.human_count import human_count  # noqa: E402


def _valleys(ax, points: IsoFlopPoints, result: IsoFlopFit) -> None:
    cmap = plt.get_cmap("viridis")
    budgets = points.budgets()
    fitted = {b.budget: b for b in result.budgets}
    for i, c in enumerate(budgets):
        color = cmap(i / max(1, len(budgets) - 1) * 0.9)
        n, loss = points.at_budget(c)
        ax.scatter(n, loss, color=color, s=18, zorder=3, label=f"C = {c:.2g}")
        b = fitted.get(float(c))
        if b is None:
            continue
        grid = np.geomspace(min(n.min(), b.params_opt) / 1.2, max(n.max(), b.params_opt) * 1.2, 100)
        ax.plot(grid, b.predict(grid), color=color, linewidth=1.2)
        ax.plot([b.params_opt], [b.loss_opt], marker="*", markersize=11, color=color, markeredgecolor="k", zorder=4)
        if b.params_ci:
            ax.hlines(b.loss_opt, *b.params_ci, color=color, linewidth=2.5, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(f"parameters N ({points.n_kind.replace('_', '-')})")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("IsoFLOP profiles (★ minimum, bar: its interval)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _optimal_sizes(ax, result: IsoFlopFit, comparison: Optional[Comparison]) -> None:
    c = np.array([b.budget for b in result.budgets])
    n = np.array([b.params_opt for b in result.budgets])
    lo = np.array([b.params_ci[0] if b.params_ci else v for b, v in zip(result.budgets, n)])
    hi = np.array([b.params_ci[1] if b.params_ci else v for b, v in zip(result.budgets, n)])
    ax.errorbar(c, n, yerr=[n - lo, hi - n], fmt="o", color="C0", capsize=3, label="approach 2: N*(C)")
    law = result.params_law
    if law is not None:
        grid = np.geomspace(c.min() / 2, c.max() * 2, 50)
        interval = f" [{law.exponent_ci[0]:.3f}, {law.exponent_ci[1]:.3f}]" if law.exponent_ci else ""
        ax.plot(grid, law(grid), color="C0", label=f"N* = {law.coefficient:.3g}·C^{law.exponent:.3f}{interval}")
    if comparison is not None:
        ax.plot([r.budget for r in comparison.rows], [r.params_approach3 for r in comparison.rows], "s--",
                color="C3", markersize=5, label="approach 3 (Chinchilla fit)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOPs)")
    ax.set_ylabel("compute-optimal N*")
    ax.set_title("Optimal size against compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def isoflop_plot(points: IsoFlopPoints, result: IsoFlopFit, out: Path,
                 comparison: Optional[Comparison] = None) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    _valleys(left, points, result)
    _optimal_sizes(right, result, comparison)
    sizes = ", ".join(human_count(b.params_opt) for b in result.budgets)
    fig.suptitle(f"Approach 2 (IsoFLOP): N* = {sizes}", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
