"""The IsoFLOP part of `scalelab report`: when runs.parquet has `flops_budget` values, fit approach 2,
set it beside approach 3, and write it into the report folder.

- fits.json, key `isoflop`: the whole fit (per-budget parabolas, minima, intervals, power laws, notes)
  and the side-by-side optima;
- fits.parquet: rows of law `isoflop` for the power laws (constants G_N, a of N* = G_N·C^a and G_D, b
  of D* = G_D·C^b), in the table's existing columns, so the `fits` view keeps its shape;
- isoflop.parquet: a row per budget (N*, D*, L*, intervals, approach 3's optimum), the `isoflop` view
  of `scalelab query`;
- plots/isoflop.png, and an HTML fragment for report.html.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.orchestrator.scaling.fit import LawFit
from scalelab.orchestrator.scaling.fits import FITS_SCHEMA
from scalelab.orchestrator.scaling.isoflop_compare import Comparison, compare, fit_approach3
from scalelab.orchestrator.scaling.isoflop_fit import IsoFlopFit, PowerLaw, fit_isoflop
from scalelab.orchestrator.scaling.isoflop_plot import isoflop_plot
from scalelab.orchestrator.scaling.isoflop_points import RULE_6N, isoflop_points
from scalelab.core.atomic import write_json, write_parquet

LAW = "isoflop"
ISOFLOP_FILE = "isoflop.parquet"

ISOFLOP_SCHEMA = pa.schema([
    ("flops_budget", pa.float64()),     # C
    ("n_points", pa.int64()),           # sizes trained at C
    ("params_opt", pa.float64()),       # approach 2: N*(C), the parabola's minimum
    ("params_ci_low", pa.float64()),
    ("params_ci_high", pa.float64()),
    ("tokens_opt", pa.float64()),       # D*(C) = C / FLOPs per token at N*
    ("tokens_ci_low", pa.float64()),
    ("tokens_ci_high", pa.float64()),
    ("loss_opt", pa.float64()),
    ("extrapolated", pa.bool_()),       # N* outside the sizes trained
    ("params_approach3", pa.float64()),  # N_opt(C) from a Chinchilla fit of the same runs; null without one
    ("tokens_approach3", pa.float64()),
    ("ci_level", pa.float64()),
    ("n_kind", pa.string()),            # which N: non_embedding, all, as given
    ("d_rule", pa.string()),            # flops_per_token (as counted) or 6N
])


@dataclass(frozen=True)
class IsoFlopReport:
    fit: IsoFlopFit
    comparison: Optional[Comparison]
    plot: Path
    table: Path


def _law_rows(name: str, scale: str, law: Optional[PowerLaw], level: float) -> list[dict[str, Any]]:
    if law is None:
        return []
    rows = []
    for constant, value, ci in ((scale, law.coefficient, law.coefficient_ci), (name, law.exponent, law.exponent_ci)):
        lo, hi = ci or (None, None)
        rows.append({"law": LAW, "params": None, "constant": constant, "value": value, "ci_low": lo, "ci_high": hi,
                     "ci_level": level, "r2": law.r2, "n_points": law.n_points})
    return rows


def _budget_rows(result: IsoFlopFit, comparison: Optional[Comparison]) -> list[dict[str, Any]]:
    third = {r.budget: r for r in comparison.rows} if comparison else {}
    rows = []
    for b in result.budgets:
        (p_lo, p_hi), (d_lo, d_hi) = b.params_ci or (None, None), b.tokens_ci or (None, None)
        other = third.get(b.budget)
        rows.append({"flops_budget": b.budget, "n_points": b.n_points, "params_opt": b.params_opt,
                     "params_ci_low": p_lo, "params_ci_high": p_hi, "tokens_opt": b.tokens_opt,
                     "tokens_ci_low": d_lo, "tokens_ci_high": d_hi, "loss_opt": b.loss_opt,
                     "extrapolated": b.extrapolated, "params_approach3": other.params_approach3 if other else None,
                     "tokens_approach3": other.tokens_approach3 if other else None, "ci_level": result.ci_level,
                     "n_kind": result.n_kind, "d_rule": result.d_rule})
    return rows


def write_isoflop(report_dir: Path, result: IsoFlopFit, comparison: Optional[Comparison]) -> Path:
    """fits.json's `isoflop` key, the `isoflop` rows of fits.parquet (others kept), and isoflop.parquet."""
    fits_path = report_dir / "fits.parquet"
    kept = [r for r in pq.read_table(fits_path).to_pylist() if r["law"] != LAW] if fits_path.is_file() else []
    rows = kept + _law_rows("a", "G_N", result.params_law, result.ci_level) \
        + _law_rows("b", "G_D", result.tokens_law, result.ci_level)
    write_parquet(fits_path, pa.Table.from_pylist(rows, schema=FITS_SCHEMA))
    doc_path = report_dir / "fits.json"
    doc = json.loads(doc_path.read_text()) if doc_path.is_file() else {}
    doc[LAW] = {**result.to_json(), "approach3": comparison.to_json() if comparison else None}
    write_json(doc_path, doc, indent=1)
    table_path = report_dir / ISOFLOP_FILE
    write_parquet(table_path, pa.Table.from_pylist(_budget_rows(result, comparison), schema=ISOFLOP_SCHEMA))
    return table_path


def isoflop_report(report_dir: str | Path, params: str = "non_embedding", bootstrap: int = 200, seed: int = 0,
                   chinchilla: Optional[LawFit] = None, approach3: bool = True,
                   start: Optional[LawFit] = None) -> Optional[IsoFlopReport]:
    """Fit, write and plot the report folder's IsoFLOP runs; None when runs.parquet has none.

    `chinchilla`: an approach-3 fit of these runs with D = tokens trained to compare with; by default
    one is fitted here, also from `start` (`approach3=False` skips the comparison)."""
    report_dir = Path(report_dir)
    points = isoflop_points(pq.read_table(report_dir / "runs.parquet"), str(report_dir / "runs.parquet"), params)
    if points is None:
        return None
    result = fit_isoflop(points, bootstrap=bootstrap, seed=seed)
    comparison = compare(points, result, chinchilla or fit_approach3(points, start)) if approach3 else None
    table = write_isoflop(report_dir, result, comparison)
    plot = isoflop_plot(points, result, report_dir / "plots" / "isoflop.png", comparison)
    return IsoFlopReport(result, comparison, plot, table)


def _interval(ci: Optional[tuple[float, float]]) -> str:
    return f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""


def isoflop_html(rep: IsoFlopReport) -> str:
    """The report.html section: a row per budget, both approaches side by side, the power laws, notes."""
    result, third = rep.fit, {r.budget: r for r in rep.comparison.rows} if rep.comparison else {}
    rows = []
    for b in result.budgets:
        other = third.get(b.budget)
        cells = [f"{b.budget:.3g}", str(b.n_points), f"{b.params_opt:.4g}{_interval(b.params_ci)}",
                 f"{b.tokens_opt:.4g}{_interval(b.tokens_ci)}", f"{b.tokens_opt / b.params_opt:.1f}",
                 f"{b.loss_opt:.4f}", "yes" if b.extrapolated else "",
                 f"{other.params_approach3:.4g}" if other else "-", f"{other.tokens_approach3:.4g}" if other else "-"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = ("C (FLOPs)", "sizes", "N* (approach 2)", "D*", "D*/N*", "L*", "extrapolated", "N opt (approach 3)",
            "D opt (approach 3)")
    laws = []
    for name, law in (("N*", result.params_law), ("D*", result.tokens_law)):
        if law is not None:
            laws.append(f"{name} = {law.coefficient:.4g}{_interval(law.coefficient_ci)} · C^{law.exponent:.4f}"
                        f"{_interval(law.exponent_ci)}")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    rule = "C / (6·N*)" if result.d_rule == RULE_6N else "C / FLOPs per token at N* (as the runs counted them)"
    third_text = ("the minimum of a Chinchilla fit of the same runs (D = tokens trained) under the same FLOP count"
                  if rep.comparison else "not fitted (it needs 2 sizes and 5 distinct (N, D) runs, with α, β > 0)")
    return (f"<h2>IsoFLOP (approach 2)</h2><p>Per budget, a parabola of loss in ln N; N is "
            f"{html.escape(result.n_kind.replace('_', '-'))} parameters; D* = {html.escape(rule)}. Approach 3: "
            f"{html.escape(third_text)}. Intervals: {result.ci_level:.0%}, {result.replicates} residual-bootstrap "
            f"replicates.</p>"
            f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(rows)}</table>"
            + (f"<p>{html.escape('; '.join(laws))}</p>" if laws else "")
            + f"<ul>{notes}<li>The data-law and Chinchilla fits above read D as the scale's unique tokens; an "
              f"IsoFLOP run trains on part of its scale, so for these runs read approach 3 here.</li></ul>")
