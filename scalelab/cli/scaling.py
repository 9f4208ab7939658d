"""`scalelab scaling fit | predict | optimal`: laws from a table of runs, or from published constants."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.markup import escape

from scalelab.cli.common import console, fail

# The domain packages load torch, DeepSpeed and Ray: they are imported inside each command, so
# `scalelab --help` and a mistyped flag answer at once.

scaling_app = typer.Typer(help="Fit scaling laws, predict losses, plan compute.", no_args_is_help=True)


@scaling_app.command("fit")
def fit_cmd(
    table: Path = typer.Argument(..., help="A sweep's report folder or runs.parquet, or a CSV/Parquet with params, tokens, loss."),
    law: str = typer.Option("data", "--law", help="data (per model size), kaplan, chinchilla, kaplan-nd, data-constrained."),
    params: str = typer.Option("non_embedding", "--params", help="For runs.parquet: which N, non_embedding or all."),
    metric: str = typer.Option("bpb", "--metric", help="For runs.parquet: best validation loss in bpb (bits per byte) or nats (per token)."),
    bootstrap: int = typer.Option(100, "--bootstrap", min=0, help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the fitted constants as JSON."),
    family: Optional[str] = typer.Option(None, "--family", help="For runs.parquet of several model families: the one to fit (gpt, bert, lstm)."),
) -> None:
    """Fit a scaling law; in a sweep's report folder the fit is also written to fits.parquet."""
    from scalelab.orchestrator.scaling.finite_json import dumps
    from scalelab.orchestrator.scaling.fits import fit, fits_json, write_fits
    from scalelab.orchestrator.scaling.points import METRICS, PointsError, load_points

    def error(message: str) -> None:
        if as_json:  # a script reading stdout still gets JSON
            print(dumps({"error": message}))
        fail(message)

    if params not in ("non_embedding", "all"):
        error(f"--params {params}: must be non_embedding or all")
    if metric not in METRICS:
        error(f"--metric {metric}: must be one of {', '.join(METRICS)}")
    try:
        points = load_points(table, params=params, metric=metric, family=family)
        fits = fit(points, law, bootstrap=bootstrap, seed=seed)
        report_dir = table if table.is_dir() else table.parent
        if (report_dir / "runs.parquet").is_file() and (table.is_dir() or table.name == "runs.parquet"):
            write_fits(report_dir, fits)
    except PointsError as exc:
        error(str(exc))
        return
    if as_json:
        print(dumps(fits_json(fits), indent=1))
        return
    for f in fits:
        head = (f"{f.family}: " if f.family and f.family != "gpt" else "") + f"{f.law}" + (
            f", N = {f.group:.4g}" if f.group is not None else "")
        consts = ", ".join(f"{k} = {v:.4g}" + (f" [{f.ci[k][0]:.4g}, {f.ci[k][1]:.4g}]" if k in f.ci else "")
                           for k, v in f.constants.items())
        console.print(f"{head}: {consts}; R² (log loss) {f.r2:.4f}, {f.n_points} points", highlight=False)
        if f.backtest is not None:
            bt = f.backtest.to_json()
            console.print(f"  backtest: {f.backtest.rule}; relative error max {bt['max_rel_error']:.2%}, "
                          f"mean {bt['mean_rel_error']:.2%}", highlight=False)
        for note in f.notes:
            console.print(f"  note: {escape(note)}", highlight=False)


def _law_constants(fit_path: Optional[Path], published: Optional[str]) -> dict:
    from scalelab.orchestrator.scaling.fits_file import FitsFileError, law_constants

    try:
        return law_constants(fit_path, published)
    except FitsFileError as exc:
        fail(str(exc))
        raise


@scaling_app.command("predict")
def predict(
    params: float = typer.Option(..., "--params", help="N, counted as the fit counted it."),
    tokens: float = typer.Option(..., "--tokens", help="D, unique training tokens."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over D (data-constrained fits)."),
    fit_path: Optional[Path] = typer.Option(None, "--fit", help="Report folder or fits.json."),
    published: Optional[str] = typer.Option(None, "--published", help="hoffmann or besiroglu constants instead of a fit."),
) -> None:
    """Loss at N parameters and D tokens, with the bootstrap interval of the fit."""
    from scalelab.orchestrator.scaling.laws import predict_loss

    if params <= 0 or tokens <= 0 or epochs <= 0:
        fail("--params, --tokens and --epochs must be positive")
    c = _law_constants(fit_path, published)
    law = c["law"]
    value = float(predict_loss(law, c, params, tokens, epochs))
    samples = [float(predict_loss(law, s, params, tokens, epochs)) for s in c.get("samples", [])]
    interval = ""
    if samples:
        lo, hi = np.percentile(samples, [2.5, 97.5])
        interval = f", 95% interval [{lo:.4f}, {hi:.4f}] from {len(samples)} bootstrap fits"
    console.print(f"{law}: loss at N = {params:.4g}, D = {tokens:.4g}: {value:.4f}{interval}")


@scaling_app.command("optimal")
def optimal(
    flops: float = typer.Option(..., "--flops", help="Training compute C (C ≈ 6ND)."),
    fit_path: Optional[Path] = typer.Option(None, "--fit", help="Report folder or fits.json."),
    published: Optional[str] = typer.Option(None, "--published", help="hoffmann or besiroglu constants instead of a fit."),
) -> None:
    """Compute-optimal N and D for a budget, from a Chinchilla fit."""
    from scalelab.orchestrator.scaling.optimal import compute_optimal

    if flops <= 0:
        fail("--flops must be positive")
    o = compute_optimal(_law_constants(fit_path, published), flops)
    console.print(f"C = {flops:.3g} FLOPs: N = {o['params']:.4g} parameters, D = {o['tokens']:.4g} tokens "
                  f"({o['tokens_per_param']:.1f} tokens per parameter), predicted loss {o['loss']:.4f}; "
                  f"N ∝ C^{o['n_exponent']:.3f}, D ∝ C^{o['d_exponent']:.3f}")
