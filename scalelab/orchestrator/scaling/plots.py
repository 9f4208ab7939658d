"""The report's pictures (matplotlib, PNG, no display needed).

- loss against unique tokens, log-log, one series per model size, with each size's fitted L(D),
  its bootstrap band, and the backtest: the fit made without the largest D, and its prediction there;
- validation curves against tokens seen, one panel per model size, each run's best point (where
  early stopping kept it) marked;
- iso-loss contours of a Chinchilla fit over (N, D), framed so that the runs and the compute-optimal
  frontier over their compute range are both inside;
- for a sweep of several model families, the families side by side: L(D) of each family's sizes,
  and L(N) at each family's largest D, each with its fit and bootstrap band.
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

from scalelab.orchestrator.scaling.fit import LawFit  # noqa: E402
from scalelab.orchestrator.scaling.laws import predict_loss  # noqa: E402
from scalelab.orchestrator.scaling.optimal import compute_optimal  # noqa: E402
from scalelab.orchestrator.scaling.points import Points  # noqa: E402
from scalelab.core.human_count import human_count  # noqa: E402


def loss_vs_data(points: Points, fits: list[LawFit], out: Path, unit: str = "nats/token",
                 family: Optional[str] = None) -> Path:
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
        d = np.geomspace(points.tokens[mask].min() / 1.5, points.tokens[mask].max() * 4, 100)
        ax.plot(d, predict_loss(fit.law, fit.constants, n, d), color=color, label=_law_label(fit))
        if fit.samples:
            curves = np.array([predict_loss(fit.law, s, n, d) for s in fit.samples])
            lo, hi = np.percentile(curves, [(1 - fit.ci_level) / 2 * 100, (1 + fit.ci_level) / 2 * 100], axis=0)
            ax.fill_between(d, lo, hi, color=color, alpha=0.15, linewidth=0)
        _backtest_marks(ax, fit, points, color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))  # losses, not powers of ten
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    ax.set_xlabel("unique training tokens D")
    ax.set_ylabel(f"best validation loss ({unit})")
    ax.set_title(("" if family is None else f"{family}: ") +
                 "Loss against data (×: backtest prediction from the fit without the largest D)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out)


def _backtest_marks(ax, fit: LawFit, points: Points, color: str) -> None:
    """The held-out points' predictions by the fit that did not see them."""
    if fit.backtest is None:
        return
    tokens = {label: d for label, d in zip(points.labels, points.tokens)}
    xs = [tokens.get(label) for label in fit.backtest.held_out]
    pairs = [(x, p) for x, p in zip(xs, fit.backtest.predicted) if x is not None and p is not None]
    if pairs:
        ax.scatter(*zip(*pairs), marker="x", s=60, color=color, zorder=4)


def _law_label(fit: LawFit) -> str:
    c = fit.constants
    if fit.law == "data":
        return f"fit: {c['E']:.2f} + {c['B']:.3g}/D^{c['beta']:.2f} (R² {fit.r2:.3f})"
    if fit.law == "kaplan":
        return f"fit: ({c['D_c']:.3g}/D)^{c['alpha_D']:.3f} (R² {fit.r2:.3f})"
    return fit.law


def loss_curves(curves: pa.Table, runs: pa.Table, out: Path, metric: str = "bpb") -> Path:
    """Validation loss against tokens seen, a panel per model size; ★ marks each run's best point."""
    meta = {r["run_id"]: r for r in runs.to_pylist()}
    rows = [r for r in curves.to_pylist() if r["val_loss"] is not None]
    column = "val_bpb" if metric == "bpb" and any(r.get("val_bpb") is not None for r in rows) else "val_loss"

    def panel(run_id: str) -> tuple[str, int]:  # a panel per family and model size
        m = meta.get(run_id, {})
        return m.get("family") or "gpt", m.get("params_non_embedding", 0)

    sizes = sorted({panel(r["run_id"]) for r in rows if r["run_id"] in meta} or {("gpt", 0)})
    several = len({family for family, _ in sizes}) > 1
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 4.2), squeeze=False, sharey=not several)
    for ax, (family, size) in zip(axes[0], sizes):
        mine = sorted({r["run_id"] for r in rows if r["run_id"] in meta and panel(r["run_id"]) == (family, size)},
                      key=lambda run: meta[run]["unique_tokens"] if run in meta else 0)
        for run_id in mine:
            points = [(r["tokens_seen"], r[column]) for r in rows if r["run_id"] == run_id and r[column] is not None]
            if not points:
                continue
            line, = ax.plot(*zip(*points), linewidth=1.2,
                            label=f"D = {human_count(meta[run_id]['unique_tokens'])}" if run_id in meta else run_id)
            best = min(points, key=lambda p: p[1])
            ax.plot(*best, "*", color=line.get_color(), markersize=11, markeredgecolor="k", markeredgewidth=0.5)
        ax.set_xscale("log")
        ax.set_title(("" if not several else f"{family}: ") + f"N = {human_count(size)} non-embedding")
        ax.set_xlabel("tokens seen")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("validation " + ("bits per byte" if column == "val_bpb" else "loss (nats/token)"))
    fig.suptitle("Validation curves (★: the best point, which the fits use)", fontsize=10)
    return _save(fig, out)


FAMILY_MARKERS = {"gpt": "o", "bert": "s", "lstm": "^"}


def families_compare(families: list[tuple[str, Points, list[LawFit], list[LawFit]]], out: Path,
                     unit: str) -> Path:
    """Left, L(D): each family's points, per-size fits and bands (one color per family). Right, L(N):
    each family's best loss at its largest D against N, with its joint fit at that D and its band
    when the family has one (Chinchilla's form, else Kaplan's), else the points joined."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (family, points, data_fits, joint_fits) in enumerate(families):
        color, marker = colors[i % len(colors)], FAMILY_MARKERS.get(family, "D")
        by_size = {f.group: f for f in data_fits}
        for n in np.unique(points.params):
            mask = points.params == n
            left.scatter(points.tokens[mask], points.loss[mask], color=color, marker=marker, zorder=3)
            fit = by_size.get(float(n))
            if fit is not None:
                d = np.geomspace(points.tokens[mask].min() / 1.5, points.tokens[mask].max() * 4, 100)
                left.plot(d, predict_loss(fit.law, fit.constants, n, d), color=color, linewidth=1,
                          label=f"{family}, N = {human_count(n)}: β = {fit.constants['beta']:.2f}"
                          + (f" [{fit.ci['beta'][0]:.2f}, {fit.ci['beta'][1]:.2f}]" if "beta" in fit.ci else ""))
                _band(left, fit, n, d, color)
        d_max = float(points.tokens.max())
        top = points.tokens == d_max
        ns, losses = points.params[top], points.loss[top]
        order = np.argsort(ns)
        right.scatter(ns[order], losses[order], color=color, marker=marker, zorder=3,
                      label=f"{family} at D = {human_count(d_max)}")
        joint = next((f for f in joint_fits if f.law == "chinchilla"), None) or next(iter(joint_fits), None)
        if joint is not None and len(ns) > 1:
            n_grid = np.geomspace(ns.min() / 1.5, ns.max() * 4, 100)
            right.plot(n_grid, predict_loss(joint.law, joint.constants, n_grid, d_max), color=color,
                       label=f"{family}: {joint.law} fit" + _exponent_label(joint))
            _band(right, joint, n_grid, d_max, color)
        elif len(ns) > 1:
            right.plot(ns[order], losses[order], color=color, linewidth=1, linestyle=":")
    for ax, xlabel in ((left, "unique training tokens D"), (right, "non-embedding parameters N")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best validation loss ({unit})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    left.set_title("L(D) by family (bands: 95% bootstrap)")
    right.set_title("L(N) at each family's largest D")
    fig.suptitle("Model families on one corpus (BERT: masked-token loss, another quantity: compare exponents)",
                 fontsize=10)
    return _save(fig, out)


def _band(ax, fit: LawFit, n, d, color: str) -> None:
    if fit.samples:
        curves = np.array([predict_loss(fit.law, s, n, d) for s in fit.samples])
        lo, hi = np.percentile(curves, [(1 - fit.ci_level) / 2 * 100, (1 + fit.ci_level) / 2 * 100], axis=0)
        ax.fill_between(n if np.ndim(n) else d, lo, hi, color=color, alpha=0.15, linewidth=0)


def _exponent_label(fit: LawFit) -> str:
    key = "alpha" if "alpha" in fit.constants else "alpha_N" if "alpha_N" in fit.constants else None
    if key is None:
        return ""
    ci = fit.ci.get(key)
    return f", {key} = {fit.constants[key]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def chinchilla_contours(fit: LawFit, points: Optional[Points], out: Path) -> Path:
    c = fit.constants
    frontier = []
    if points is not None and len(points):
        flops = 6.0 * points.params * points.tokens
        budgets = np.geomspace(flops.min() / 10, flops.max() * 100, 60)
        frontier = _frontier(c, budgets)
        ns = np.r_[points.params, [o["params"] for o in frontier]]
        ds = np.r_[points.tokens, [o["tokens"] for o in frontier]]
        n_lo, n_hi = ns.min() / 3, ns.max() * 3
        d_lo, d_hi = ds.min() / 3, ds.max() * 3
    else:
        n_lo, n_hi, d_lo, d_hi = 1e6, 1e11, 1e8, 1e13
        frontier = _frontier(c, np.geomspace(6 * n_lo * d_lo, 6 * n_hi * d_hi, 60))
    n, d = np.meshgrid(np.geomspace(n_lo, n_hi, 200), np.geomspace(d_lo, d_hi, 200))
    loss = predict_loss("chinchilla", c, n, d)
    fig, ax = plt.subplots(figsize=(7, 5))
    cs = ax.contour(d, n, loss, levels=12, cmap="viridis")
    ax.clabel(cs, fontsize=7, fmt="%.2f")
    inside = [(o["tokens"], o["params"]) for o in frontier if d_lo <= o["tokens"] <= d_hi and n_lo <= o["params"] <= n_hi]
    if inside:
        ax.plot(*zip(*inside), "r-", linewidth=2, label="compute-optimal frontier (C = 6ND)")
    if points is not None:
        ax.scatter(points.tokens, points.params, c="k", s=12, zorder=3, label="runs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(d_lo, d_hi)
    ax.set_ylim(n_lo, n_hi)
    ax.set_xlabel("tokens D")
    ax.set_ylabel("parameters N")
    ax.set_title(f"Iso-loss: {c['E']:.2f} + {c['A']:.3g}/N^{c['alpha']:.2f} + {c['B']:.3g}/D^{c['beta']:.2f}")
    ax.legend(fontsize=8)
    return _save(fig, out)


def _frontier(c: dict, budgets: np.ndarray) -> list[dict]:
    if c["alpha"] <= 0 or c["beta"] <= 0:
        return []  # no interior optimum: nothing to draw
    optima = [compute_optimal(c, f) for f in budgets]
    # Exponents near a bound can put the optimum beyond floating point (N or D of 0 or inf): not drawable.
    return [o for o in optima if all(np.isfinite(o[k]) and o[k] > 0 for k in ("params", "tokens"))]


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
