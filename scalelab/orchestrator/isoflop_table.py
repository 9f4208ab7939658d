"""The terminal table of an IsoFLOP plan (`scalelab sweep --dry-run` with tokens.policy isoflop)."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table

from scalelab.orchestrator.isoflop_plan import IsoFlopRun
from scalelab.core.human_count import human_count

# D: C / FLOPs per token, rounded to whole steps (the tokens the run trains on); FLOPs: FLOPs per token × D.
COLUMNS = ("C", "N", "FLOPs/tok", "D (tokens)", "steps", "scale", "epochs", "FLOPs", "FLOPs/C")


def isoflop_table(runs: Sequence[IsoFlopRun], title: str) -> Table:
    """A row per run: its budget, size, data and the FLOPs it really spends (flops_per_token × tokens)."""
    show_gpu = any(r.spec.gpu_hours is not None for r in runs)
    table = Table(title=title, title_justify="left")
    table.add_column("run", no_wrap=True, min_width=max((len(r.spec.run_id) for r in runs), default=3))
    for col in COLUMNS + (("GPU-hours",) if show_gpu else ()):
        table.add_column(col, justify="right")
    for r in runs:
        s = r.spec
        cells = [s.run_id, f"{r.budget:.3g}", human_count(s.params), human_count(r.flops_per_token), f"{s.tokens:,}",
                 f"{s.steps:,}", s.scale, f"{s.epochs:.2f}", f"{r.flops:.4g}", f"{r.flops / r.budget:.4f}"]
        if show_gpu:
            cells.append(f"{s.gpu_hours:.3g}" if s.gpu_hours is not None else "-")
        table.add_row(*cells)
    total = [f"{len(runs)} runs", f"{len({r.budget for r in runs})} budgets", "", "",
             f"{sum(r.spec.tokens for r in runs):,}", f"{sum(r.spec.steps for r in runs):,}", "", "",
             f"{sum(r.flops for r in runs):.4g}", ""]
    if show_gpu:
        total.append(f"{sum(r.spec.gpu_hours or 0 for r in runs):.3g}")
    table.add_row(*total, style="bold")
    priors = {r.budget: r.prior_params for r in runs}
    table.caption = "sizes centred on the prior's N_opt: " + ", ".join(
        f"{human_count(n)} at C = {c:.3g}" for c, n in sorted(priors.items()))
    table.caption_justify = "left"
    return table
