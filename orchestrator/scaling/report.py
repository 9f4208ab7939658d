"""`scalelab report DIR`: fit, plot and write an HTML page for a sweep's report folder.

Fits the data law L(D) per model size always, and the Chinchilla law L(N, D) when the runs span at
least two model sizes and five distinct (N, D) points; writes fits.parquet / fits.json, the plots
under plots/, and report.html that shows them with the run table and the fitted constants.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow.parquet as pq

from orchestrator.scaling import plots
from orchestrator.scaling.fit import LawFit
from orchestrator.scaling.fits import fit, write_fits
from orchestrator.scaling.isoflop_report import IsoFlopReport, isoflop_html, isoflop_report
from orchestrator.scaling.points import Points, PointsError, load_points


@dataclass
class Report:
    report_dir: Path
    points: Points
    data_fits: list[LawFit]
    chinchilla: Optional[LawFit]
    plots: dict[str, Path]
    html: Path
    notes: list[str] = field(default_factory=list)
    isoflop: Optional[IsoFlopReport] = None


def make_report(report_dir: str | Path, bootstrap: int = 100, params: str = "non_embedding", seed: int = 0) -> Report:
    report_dir = Path(report_dir)
    points = load_points(report_dir, params=params)
    if len(points) == 0:
        raise PointsError(f"{report_dir}/runs.parquet: no complete runs to fit")
    notes: list[str] = []
    data_fits = []
    for n in np.unique(points.params):
        try:
            data_fits += fit(points.subset(points.params == n), "data", bootstrap, seed)
        except PointsError as exc:
            notes.append(f"data law for N = {n:.4g}: {exc}")
    chinchilla = None
    if len(np.unique(points.params)) >= 2 and len(set(zip(points.params, points.tokens))) >= 5:
        chinchilla = fit(points, "chinchilla", bootstrap=min(bootstrap, 50), seed=seed)[0]
    else:
        notes.append("Chinchilla fit skipped: it needs runs of at least 2 model sizes and 5 distinct (N, D) points")
    write_fits(report_dir, data_fits + ([chinchilla] if chinchilla else []))

    figures = {"loss_vs_data": plots.loss_vs_data(points, data_fits, report_dir / "plots" / "loss_vs_data.png")}
    if (report_dir / "curves.parquet").is_file():
        figures["loss_curves"] = plots.loss_curves(pq.read_table(report_dir / "curves.parquet"),
                                                   pq.read_table(report_dir / "runs.parquet"),
                                                   report_dir / "plots" / "loss_curves.png")
    if chinchilla:
        figures["chinchilla_contours"] = plots.chinchilla_contours(chinchilla, points,
                                                                   report_dir / "plots" / "chinchilla_contours.png")
    try:
        isoflop = isoflop_report(report_dir, params, bootstrap, seed, start=chinchilla)  # None: no IsoFLOP runs
    except PointsError as exc:
        isoflop = None
        notes.append(f"IsoFLOP fit skipped: {exc}")
    if isoflop:
        figures["isoflop"] = isoflop.plot
    page = write_html(report_dir, points, data_fits, chinchilla, figures, notes,
                      isoflop_html(isoflop) if isoflop else "")
    return Report(report_dir, points, data_fits, chinchilla, figures, page, notes, isoflop)


def _constants_html(f: LawFit) -> str:
    cells = []
    for key, value in f.constants.items():
        ci = f.ci.get(key)
        interval = f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
        cells.append(f"<td>{html.escape(key)} = {value:.4g}{interval}</td>")
    return "".join(cells) + f"<td>R² {f.r2:.4f}</td><td>{f.n_points} points</td>"


def write_html(report_dir: Path, points: Points, data_fits: list[LawFit], chinchilla: Optional[LawFit],
               figures: dict[str, Path], notes: list[str], extra_html: str = "") -> Path:
    runs = pq.read_table(report_dir / "runs.parquet").to_pylist()
    cols = ["run_id", "status", "scale", "model", "unique_tokens", "params", "params_non_embedding",
            "tokens_seen", "epochs", "final_val_loss", "best_val_loss", "attempts", "wall_time_s"]

    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("" if v is None else str(v))

    rows = "\n".join("<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cols) + "</tr>" for r in runs)
    fits_rows = "\n".join(f"<tr><td>data, N = {f.group:.4g}</td>{_constants_html(f)}</tr>" for f in data_fits)
    if chinchilla:
        fits_rows += f"\n<tr><td>chinchilla</td>{_constants_html(chinchilla)}</tr>"
    images = "\n".join(f'<h2>{html.escape(name.replace("_", " "))}</h2><img src="{p.relative_to(report_dir)}" '
                       f'alt="{html.escape(name)}">' for name, p in figures.items())
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>scalelab report: {html.escape(report_dir.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Scaling report: {html.escape(report_dir.name)}</h1>
<p>N is {html.escape(points.n_kind.replace("_", "-"))} parameters; D is unique training tokens; loss is the final
validation loss in nats per token. Intervals are bootstrap percentiles over resampled runs.</p>
<h2>Fitted constants</h2><table>{fits_rows}</table>
<ul>{note_html}</ul>
{extra_html}
{images}
<h2>Runs</h2><table><tr>{"".join(f"<th>{c}</th>" for c in cols)}</tr>
{rows}</table>
</body></html>
"""
    out = report_dir / "report.html"
    out.write_text(page)
    return out
