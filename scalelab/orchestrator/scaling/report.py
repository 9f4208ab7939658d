"""`scalelab report DIR`: fit, validate, plot and write an HTML page for a sweep's report folder.

Fits the data law L(D) per model size, and, when the runs span at least two model sizes and five
distinct (N, D) points, two joint laws L(N, D): Kaplan et al.'s form for early-stopped runs
(`kaplan-nd`) and Chinchilla's additive form (`chinchilla`, which the compute-optimal contours need).
Every fit carries bootstrap intervals and a backtest. The report opens with the answer in words
(orchestrator/scaling/answer.py), then the constants, the plots and the runs.

A sweep of several model families (gpt, bert, lstm on one corpus) is fitted family by family, never
mixed (BERT's masked-token loss is another quantity): every fit, answer and plot names its family,
and a comparison figure sets the families' L(D) and L(N) side by side with their intervals.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow.parquet as pq

from scalelab.orchestrator.scaling import plots
from scalelab.orchestrator.scaling.answer import data_answer, joint_sentence, sentence
from scalelab.orchestrator.scaling.fit import LawFit
from scalelab.orchestrator.scaling.fits import fit, per_size_fits, write_fits
from scalelab.orchestrator.scaling.isoflop_report import IsoFlopReport, isoflop_html, isoflop_report
from scalelab.orchestrator.scaling.points import Metric, Points, PointsError, families_in, load_points, read_table


LOSS_WORDS = {"best_val_bpb": "the best validation loss in bits per UTF-8 byte",
              "best_val_loss": "the best validation loss in nats per token"}
UNITS = {"best_val_bpb": "bpb", "best_val_loss": "nats/token"}
JOINT_LAWS = ("kaplan-nd", "chinchilla")


@dataclass
class FamilyFits:
    """One model family's points and fits (a sweep of one family has one of these)."""

    family: Optional[str]
    points: Points
    data_fits: list[LawFit]
    joint_fits: list[LawFit]   # kaplan-nd, chinchilla: those that could be fitted


@dataclass
class Report:
    report_dir: Path
    families: list[FamilyFits]
    plots: dict[str, Path]
    html: Path
    answers: list[str]
    notes: list[str] = field(default_factory=list)
    isoflop: Optional[IsoFlopReport] = None

    @property
    def points(self) -> Points:
        """The first family's points (a sweep of one family: all of them)."""
        return self.families[0].points

    @property
    def data_fits(self) -> list[LawFit]:
        return [f for fam in self.families for f in fam.data_fits]

    @property
    def joint_fits(self) -> list[LawFit]:
        return [f for fam in self.families for f in fam.joint_fits]

    @property
    def all_notes(self) -> list[str]:
        """The report's notes and every fit's, each once."""
        return all_notes(self.notes, self.data_fits + self.joint_fits, named=len(self.families) > 1)

    @property
    def chinchilla(self) -> Optional[LawFit]:
        return chinchilla_of(self.joint_fits)


def chinchilla_of(fits: list[LawFit]) -> Optional[LawFit]:
    """The Chinchilla fit among the joint fits (the contours and the IsoFLOP comparison need it)."""
    return next((f for f in fits if f.law == "chinchilla"), None)


def all_notes(notes: list[str], fits: list[LawFit], named: bool = False) -> list[str]:
    """The report's notes, then every fit's (named by its family when the report has several), each once."""
    return list(dict.fromkeys(notes + [(f"{f.family}: " if named and f.family else "") + n
                                       for f in fits for n in f.notes]))


def make_report(report_dir: str | Path, bootstrap: int = 100, params: str = "non_embedding", seed: int = 0,
                metric: Metric = "bpb") -> Report:
    report_dir = Path(report_dir)
    table = read_table(report_dir)
    names = families_in(table) or [None]
    several = len(names) > 1
    notes: list[str] = []
    families, answers = [], []
    for name in names:
        points = load_points(report_dir, params=params, metric=metric, table=table, family=name)
        if len(points) == 0:
            raise PointsError(f"{report_dir}/runs.parquet: no complete runs to fit")
        notes += [n for n in points.notes if n not in notes]
        prefix = f"{name}: " if several else ""
        fam = FamilyFits(name, points, _data_fits(points, bootstrap, seed, notes, prefix),
                         _joint_fits(points, bootstrap, seed, notes, prefix))
        families.append(fam)
        unit = UNITS.get(points.loss_kind, points.loss_kind)
        answers += [prefix + sentence(data_answer(f, float(points.tokens[points.params == f.group].max()), unit))
                    for f in fam.data_fits]
        answers += [prefix + joint_sentence(f) for f in fam.joint_fits]
    write_fits(report_dir, [f for fam in families for f in fam.data_fits + fam.joint_fits])

    figures = _figures(report_dir, families, metric)
    chinchilla = chinchilla_of(families[0].joint_fits)
    try:
        # IsoFLOP runs are planned for one family; a sweep of several has none to fit here.
        isoflop = None if several else isoflop_report(report_dir, params, bootstrap, seed, start=chinchilla)
    except PointsError as exc:
        isoflop = None
        notes.append(f"IsoFLOP fit skipped: {exc}")
    if isoflop:
        figures["isoflop"] = isoflop.plot
    page = write_html(report_dir, families, figures, answers, notes, isoflop_html(isoflop) if isoflop else "")
    return Report(report_dir, families, figures, page, answers, notes, isoflop)


def _data_fits(points: Points, bootstrap: int, seed: int, notes: list[str], prefix: str = "") -> list[LawFit]:
    skipped: list[str] = []
    fits = per_size_fits(points, "data", bootstrap, seed, skipped=skipped)
    notes += [prefix + n for n in skipped]
    for f in fits:
        f.notes = [x for x in f.notes if x not in points.notes]  # said once, above
    return fits


def _joint_fits(points: Points, bootstrap: int, seed: int, notes: list[str], prefix: str = "") -> list[LawFit]:
    if len(np.unique(points.params)) < 2 or len(set(zip(points.params, points.tokens))) < 5:
        notes.append(f"{prefix}joint L(N, D) fits skipped: they need runs of at least 2 model sizes and 5 distinct "
                     f"(N, D) points")
        return []
    fits = []
    for law in JOINT_LAWS:
        try:
            found = fit(points, law, bootstrap=bootstrap, seed=seed)[0]
            found.notes = [x for x in found.notes if x not in points.notes]
            fits.append(found)
        except PointsError as exc:
            notes.append(f"{prefix}{law} law: {exc}")
    return fits


def _figures(report_dir: Path, families: list[FamilyFits], metric: Metric) -> dict[str, Path]:
    """One family: loss_vs_data, loss_curves, chinchilla_contours. Several: those per family
    (`loss_vs_data_bert`, ...), one loss_curves with a panel per family and size, and `families`."""
    out = report_dir / "plots"
    several = len(families) > 1
    figures: dict[str, Path] = {}
    for fam in families:
        suffix = f"_{fam.family}" if several else ""
        unit = UNITS.get(fam.points.loss_kind, fam.points.loss_kind)
        figures[f"loss_vs_data{suffix}"] = plots.loss_vs_data(fam.points, fam.data_fits,
                                                              out / f"loss_vs_data{suffix}.png", unit, fam.family if several else None)
        chinchilla = chinchilla_of(fam.joint_fits)
        if chinchilla:
            figures[f"chinchilla_contours{suffix}"] = plots.chinchilla_contours(
                chinchilla, fam.points, out / f"chinchilla_contours{suffix}.png")
    if several:
        figures["families"] = plots.families_compare(
            [(fam.family, fam.points, fam.data_fits, fam.joint_fits) for fam in families], out / "families.png",
            UNITS.get(families[0].points.loss_kind, families[0].points.loss_kind))
    if (report_dir / "curves.parquet").is_file():
        figures["loss_curves"] = plots.loss_curves(pq.read_table(report_dir / "curves.parquet"),
                                                   pq.read_table(report_dir / "runs.parquet"),
                                                   out / "loss_curves.png", metric)
    return figures


def _constants_html(f: LawFit) -> str:
    cells = []
    for key, value in f.constants.items():
        ci = f.ci.get(key)
        interval = f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
        cells.append(f"<td>{html.escape(key)} = {value:.4g}{interval}</td>")
    return "".join(cells) + f"<td>R² {f.r2:.4f}</td><td>{f.n_points} points</td>"


def write_html(report_dir: Path, families: list[FamilyFits], figures: dict[str, Path], answers: list[str],
               notes: list[str], extra_html: str = "") -> Path:
    points = families[0].points
    data_fits = [f for fam in families for f in fam.data_fits]
    joint_fits = [f for fam in families for f in fam.joint_fits]
    runs = pq.read_table(report_dir / "runs.parquet").to_pylist()
    cols = ["run_id", "status", "scale", "model", "family", "objective", "unique_tokens", "params", "params_non_embedding",
            "tokens_seen", "epochs", "steps", "stopped_by", "converged", "best_val_loss", "best_val_bpb",
            "final_val_bpb", "attempts", "wall_time_s"]

    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("" if v is None else str(v))

    cols = [c for c in cols if not runs or c in runs[0]]  # older reports lack the newer columns
    rows = "\n".join("<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cols) + "</tr>" for r in runs)
    named = len(families) > 1

    def who(f: LawFit) -> str:
        return f"{html.escape(f.family)}: " if named and f.family else ""

    fits_rows = "\n".join(f"<tr><td>{who(f)}data, N = {f.group:.4g}</td>{_constants_html(f)}</tr>" for f in data_fits)
    fits_rows += "".join(f"\n<tr><td>{who(f)}{html.escape(f.law)}</td>{_constants_html(f)}</tr>" for f in joint_fits)
    family_html = ""
    if named:
        family_html = ("<p>Model families, fitted separately: " + ", ".join(
            f"{html.escape(fam.family)} ({len(fam.points)} runs)" for fam in families)
            + ". BERT's loss is its masked-token loss (the 15% selected tokens), not a next-token loss: compare "
              "the families' exponents and intervals, not BERT's level with the others'.</p>")
    images = "\n".join(f'<h2>{html.escape(name.replace("_", " "))}</h2><img src="{p.relative_to(report_dir)}" '
                       f'alt="{html.escape(name)}">' for name, p in figures.items())
    answer_html = "".join(f"<li>{html.escape(a)}</li>" for a in answers)
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in all_notes(notes, data_fits + joint_fits, named))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>scalelab report: {html.escape(report_dir.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Scaling report: {html.escape(report_dir.name)}</h1>
{family_html}
<h2>The answer</h2><ul>{answer_html}</ul>
<p>N is {html.escape(points.n_kind.replace("_", "-"))} parameters; D is unique training tokens; loss is
{html.escape(LOSS_WORDS.get(points.loss_kind, points.loss_kind))}. Intervals are 95% bootstrap percentiles over
resampled runs; a backtest refits without the largest D (per size) or the largest-compute runs (joint laws) and
predicts them.</p>
<h2>Fitted constants</h2><table>{fits_rows}</table>
<h2>Notes</h2><ul>{note_html}</ul>
{extra_html}
{images}
<h2>Runs</h2><table><tr>{"".join(f"<th>{c}</th>" for c in cols)}</tr>
{rows}</table>
</body></html>
"""
    out = report_dir / "report.html"
    out.write_text(page)
    return out
