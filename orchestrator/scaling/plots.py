"""The report's pictures (matplotlib, PNG, no display needed).

- loss against unique tokens, log-log, one series per model size, with each size's fitted L(D)
  and its bootstrap band;
- loss curves against tokens seen for every run;
- iso-loss contours of a Chinchilla fit over (N, D) with the compute-optimal frontier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

from orchestrator.scaling.fit import LawFit  # noqa: E402
from orchestrator.scaling.laws import predict_loss  # noqa: E402
from orchestrator.scaling.optimal import compute_optimal  # noqa: E402
from orchestrator.scaling.points import Points  # noqa: E402
from training.report import human_count  # noqa: E402


def loss_vs_data(points: Points, fits: list[LawFit], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_size = {f.group: f for f in fits}
    for i, n in enumerate(np.unique(points.params)):
        color = colors[i % len(colors)]
        mask = points.params == n
        ax.scatter(points.tokens[mask], points.loss[mask], color=color, zorder=3,
                   label=f"N = {human_count(n)} ({points.n_kind.replace('_', '-')})")
        fit = by_size.get(float(n))
        if fit is None:
            continue
        d = np.geomspace(points.tokens[mask].min() / 1.5, points.tokens[mask].max() * 1.5, 100)
        ax.plot(d, predict_loss(fit.law, fit.constants, n, d), color=color,
                label=_law_label(fit))
        if fit.samples:
            curves = np.array([predict_loss(fit.law, s, n, d) for s in fit.samples])
            lo, hi = np.percentile(curves, [(1 - fit.ci_level) / 2 * 100, (1 + fit.ci_level) / 2 * 100], axis=0)
            ax.fill_between(d, lo, hi, color=color, alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))  # losses, not powers of ten
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.1f"))
    ax.set_xlabel("unique training tokens D")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Loss against data")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


def _law_label(fit: LawFit) -> str:
    c = fit.constants
    if fit.law == "data":
        return f"fit: {c['E']:.2f} + {c['B']:.3g}/D^{c['beta']:.2f} (R² {fit.r2:.3f})"
    if fit.law == "kaplan":
        return f"fit: ({c['D_c']:.3g}/D)^{c['alpha_D']:.3f} (R² {fit.r2:.3f})"
    return fit.law


def loss_curves(curves: pa.Table, runs: pa.Table, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    meta = {r["run_id"]: r for r in runs.to_pylist()}
    rows = curves.to_pylist()
    for run_id in sorted({r["run_id"] for r in rows}, key=lambda r: (meta.get(r, {}).get("params") or 0, r)):
        mine = [r for r in rows if r["run_id"] == run_id]
        line, = ax.plot([r["tokens_seen"] for r in mine], [r["train_loss"] for r in mine], linewidth=1,
                        label=run_id.rsplit("-", 1)[0])
        vals = [(r["tokens_seen"], r["val_loss"]) for r in mine if r["val_loss"] is not None]
        if vals:
            ax.plot(*zip(*vals), "o", color=line.get_color(), markersize=3)
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (lines: train, dots: validation)")
    ax.set_title("Loss curves")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out)


def chinchilla_contours(fit: LawFit, points: Optional[Points], out: Path) -> Path:
    c = fit.constants
    if points is not None and len(points):
        n_lo, n_hi = points.params.min() / 10, points.params.max() * 100
        d_lo, d_hi = points.tokens.min() / 10, points.tokens.max() * 100
    else:
        n_lo, n_hi, d_lo, d_hi = 1e6, 1e11, 1e8, 1e13
    n, d = np.meshgrid(np.geomspace(n_lo, n_hi, 200), np.geomspace(d_lo, d_hi, 200))
    loss = predict_loss("chinchilla", c, n, d)
    fig, ax = plt.subplots(figsize=(7, 5))
    cs = ax.contour(d, n, loss, levels=12, cmap="viridis")
    ax.clabel(cs, fontsize=7, fmt="%.2f")
    flops = np.geomspace(6 * n_lo * d_lo, 6 * n_hi * d_hi, 60)
    frontier = [compute_optimal(c, f) for f in flops]
    inside = [(o["tokens"], o["params"]) for o in frontier if d_lo <= o["tokens"] <= d_hi and n_lo <= o["params"] <= n_hi]
    if inside:
        ax.plot(*zip(*inside), "r-", linewidth=2, label="compute-optimal (C = 6ND)")
    if points is not None:
        ax.scatter(points.tokens, points.params, c="k", s=12, zorder=3, label="runs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens D")
    ax.set_ylabel("parameters N")
    ax.set_title(f"Iso-loss: {c['E']:.2f} + {c['A']:.3g}/N^{c['alpha']:.2f} + {c['B']:.3g}/D^{c['beta']:.2f}")
    ax.legend(fontsize=8)
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
