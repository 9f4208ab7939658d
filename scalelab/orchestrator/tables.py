"""Terminal tables of a sweep: the plan (`--dry-run`) and the live status of its runs."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table

from scalelab.training.metrics import read_progress
from scalelab.core.human_count import human_count


def plan_table(runs: Sequence, title: str) -> Table:
    show_gpu = any(r.gpu_hours is not None for r in runs)
    table = Table(title=title, title_justify="left")
    table.add_column("run", no_wrap=True, min_width=max((len(r.run_id) for r in runs), default=3))
    for col in ("N", "N non-emb", "D", "tokens", "epochs", "steps", "FLOPs (6ND)") + (("GPU-hours",) if show_gpu else ()):
        table.add_column(col, justify="right")
    for r in runs:
        cap = "≤ " if r.config.train.early_stop is not None else ""  # early stopping: the length is a cap
        cells = [r.run_id, human_count(r.params), human_count(r.params_non_embedding), f"{r.unique_tokens:,}",
                 f"{cap}{r.tokens:,}", f"{cap}{r.epochs:.2f}", f"{cap}{r.steps:,}", f"{cap}{r.flops_6nd:.3g}"]
        if show_gpu:
            cells.append(f"{r.gpu_hours:.3g}" if r.gpu_hours is not None else "-")
        table.add_row(*cells)
    total = [f"{len(runs)} runs", "", "", "", f"{sum(r.tokens for r in runs):,}", "", f"{sum(r.steps for r in runs):,}",
             f"{sum(r.flops_6nd for r in runs):.3g}"]
    if show_gpu:
        total.append(f"{sum(r.gpu_hours or 0 for r in runs):.3g}")
    table.add_row(*total, style="bold")
    return table


STYLE = {"pending": "dim", "running": "yellow", "complete": "green", "failed": "red"}


def status_table(states: Sequence, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("run", no_wrap=True, min_width=max((len(s.spec.run_id) for s in states), default=3))
    table.add_column("status")
    for col in ("step", "train loss", "val loss", "tokens", "attempts"):
        table.add_column(col, justify="right")
    for s in states:
        progress = read_progress(s.spec.run_dir) if s.status in ("running", "failed") else None
        if s.summary:
            step, loss, val, tokens = s.summary["steps"], s.summary["final_train_loss"], s.summary["final_val_loss"], \
                s.summary["tokens_seen"]
        elif progress:
            step, loss, val, tokens = progress["step"], progress["train_loss"], progress["val_loss"], progress["tokens_seen"]
        else:
            step = loss = val = tokens = None
        table.add_row(
            s.spec.run_id, f"[{STYLE.get(s.status, '')}]{s.status}[/]",
            f"{step}/{s.spec.steps}" if step is not None else f"-/{s.spec.steps}",
            f"{loss:.4f}" if loss is not None else "-", f"{val:.4f}" if val is not None else "-",
            f"{tokens:,}" if tokens is not None else "-", str(s.attempts))
    return table
