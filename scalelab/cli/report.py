"""`scalelab report`: fits, plots and the answer in words for a sweep's report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import typer
from rich.table import Table

from scalelab.cli.common import console, fail
from scalelab.core.staged_folder import staged
from scalelab.core.storage import Location, is_url

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.


def report(
    reports: str = typer.Argument("out/sweeps/demo", help="A sweep's report folder, or its URL (s3://...)."),
    bootstrap: int = typer.Option(100, "--bootstrap", min=0),
    params: str = typer.Option("non_embedding", "--params", help="Which N: non_embedding or all."),
    metric: str = typer.Option("bpb", "--metric", help="Best validation loss in bpb (bits per byte) or nats (per token)."),
) -> None:
    """Fit L(D) (and L(N, D)), plot, and write REPORTS/report.html."""
    from scalelab.orchestrator.scaling.points import METRICS

    if metric not in METRICS:
        fail(f"--metric {metric}: must be one of {', '.join(METRICS)}")
    if not is_url(reports):
        _report(Path(reports), bootstrap, params, metric, str)
        return
    # A folder in object storage: reported from a local copy, and the outputs uploaded when all succeeded.
    where = Location.of(reports)
    try:
        with staged(where) as local:
            _report(local, bootstrap, params, metric, lambda p: str(p).replace(str(local), where.url))
    except OSError as exc:
        fail(f"{where}: cannot read or write it ({exc})")


def _report(reports: Path, bootstrap: int, params: str, metric: str, shown: Callable[[Path | str], str]) -> None:
    """The report of a local folder, printed; `shown` names its files (and those in messages) for the user."""
    from scalelab.orchestrator.scaling.points import PointsError
    from scalelab.orchestrator.scaling.report import make_report

    try:
        rep = make_report(reports, bootstrap=bootstrap, params=params, metric=metric)
    except PointsError as exc:
        fail(shown(str(exc)))
        return
    console.print("[bold]The answer[/bold]")
    for line in rep.answers:
        console.print(f"- {line}")
    several = len(rep.families) > 1
    for fam in rep.families:
        points, prefix = fam.points, f"{fam.family}: " if several else ""
        table = Table(title=f"{prefix}best validation loss by data size D and model size N", title_justify="left")
        for col in ("D (unique tokens)", f"N ({points.n_kind.replace('_', '-')})", points.loss_kind):
            table.add_column(col, justify="right")
        for i in sorted(range(len(points)), key=lambda i: (points.params[i], points.tokens[i])):
            table.add_row(f"{points.tokens[i]:,.0f}", f"{points.params[i]:,.0f}", f"{points.loss[i]:.4f}")
        console.print(table)
        for f in fam.data_fits:
            ci = f.ci
            console.print(f"{prefix}L(D) at N = {f.group:,.0f}: E = {f.constants['E']:.3f}, B = {f.constants['B']:.4g}, "
                          f"beta = {f.constants['beta']:.3f}"
                          + (f" [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}]" if "beta" in ci else "") + f", R² {f.r2:.4f}")
    if rep.isoflop:
        _print_isoflop(rep.isoflop)
    for note in rep.all_notes:
        console.print(f"note: {note}")
    for name, path in rep.plots.items():
        console.print(f"plot: {shown(path)}")
    console.print(f"report: {shown(rep.html)}")


def _print_isoflop(rep) -> None:
    """Approach 2's minimum per budget (approach 3's beside it) and its power laws."""
    third = {r.budget: r for r in rep.comparison.rows} if rep.comparison else {}
    for b in rep.fit.budgets:
        ci = f" [{b.params_ci[0]:,.0f}, {b.params_ci[1]:,.0f}]" if b.params_ci else ""
        other = f"; approach 3: N = {third[b.budget].params_approach3:,.0f}" if b.budget in third else ""
        console.print(f"IsoFLOP C = {b.budget:.3g}: N* = {b.params_opt:,.0f}{ci}, D* = {b.tokens_opt:,.0f}, "
                      f"L* = {b.loss_opt:.4f}{' (extrapolated)' if b.extrapolated else ''}{other}")
    for name, law in (("N*", rep.fit.params_law), ("D*", rep.fit.tokens_law)):
        if law is not None:
            ci = f" [{law.exponent_ci[0]:.3f}, {law.exponent_ci[1]:.3f}]" if law.exponent_ci else ""
            console.print(f"IsoFLOP {name} = {law.coefficient:.4g}·C^{law.exponent:.3f}{ci}")
    for note in rep.fit.notes:
        console.print(f"note: IsoFLOP: {note}")
