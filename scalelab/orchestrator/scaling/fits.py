"""Fits by law name, as the CLI and reports ask for them, and their tidy table (`fits.parquet`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.orchestrator.scaling.finite_json import dumps, finite
from scalelab.orchestrator.scaling.fit import LawFit, fit_law
from scalelab.orchestrator.scaling.laws import CHINCHILLA, DATA, KAPLAN_DATA, KAPLAN_ND, data_constrained_law
from scalelab.orchestrator.scaling.points import Points, PointsError
from scalelab.core.atomic import write_json, write_parquet

LAWS = ("data", "kaplan", "chinchilla", "kaplan-nd", "data-constrained")

FITS_SCHEMA = pa.schema([
    ("law", pa.string()),
    ("family", pa.string()),      # the model family of a sweep's runs (gpt, bert, lstm); null for a generic table
    ("params", pa.float64()),     # the model size of a per-size data-law fit; null for N-and-D laws
    ("constant", pa.string()),    # E, A, B, alpha, beta, D_c, alpha_D, R_star
    ("value", pa.float64()),
    ("ci_low", pa.float64()),
    ("ci_high", pa.float64()),
    ("ci_level", pa.float64()),
    ("r2", pa.float64()),         # on log loss
    ("n_points", pa.int64()),
])


def fit(points: Points, law: str, bootstrap: int = 100, seed: int = 0, ci_level: float = 0.95) -> list[LawFit]:
    """One fit for N-and-D laws; one per model size (distinct N) for `data` and `kaplan`."""
    if law not in LAWS:
        raise PointsError(f"--law {law}: must be one of {', '.join(LAWS)}")
    if law in ("data", "kaplan"):
        return per_size_fits(points, law, bootstrap, seed, ci_level)
    if law in ("chinchilla", "kaplan-nd"):
        return [fit_law(CHINCHILLA if law == "chinchilla" else KAPLAN_ND, points, bootstrap, seed, ci_level)]
    repeated = bool((points.epochs > 1.0 + 1e-9).any())
    result = fit_law(data_constrained_law(fit_r_star=repeated), points, bootstrap, seed, ci_level)
    if not repeated:
        result.notes.insert(0, "no run repeated its data (all epochs <= 1): R* is fixed at Muennighoff et al.'s 15.4 "
                            "and the fit equals the Chinchilla form")
    return [result]


def per_size_fits(points: Points, law: str, bootstrap: int = 100, seed: int = 0, ci_level: float = 0.95,
                  skipped: Optional[list[str]] = None) -> list[LawFit]:
    """A data law (`data` or `kaplan`) fitted to each model size. A size that can't be fitted raises,
    or, given `skipped`, is noted there and the other sizes go on."""
    form = DATA if law == "data" else KAPLAN_DATA
    fits = []
    for n in np.unique(points.params):
        try:
            part = fit_law(form, points.subset(points.params == n), bootstrap, seed, ci_level)
        except PointsError as exc:
            if skipped is None:
                raise
            skipped.append(f"{law} law for N = {n:.4g}: {exc}")
            continue
        part.group = float(n)
        fits.append(part)
    return fits


def fits_table(fits: list[LawFit]) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for f in fits:
        for key, value in f.constants.items():
            lo, hi = f.ci.get(key, [None, None])
            rows.append({"law": f.law, "family": f.family, "params": f.group, "constant": key, "value": float(value), "ci_low": lo,
                         "ci_high": hi, "ci_level": f.ci_level, "r2": f.r2, "n_points": f.n_points})
    return pa.Table.from_pylist(finite(rows), schema=FITS_SCHEMA)  # null, not NaN / inf, as in fits.json


def write_fits(report_dir: Path, fits: list[LawFit]) -> None:
    """Merge these fits into REPORT/fits.parquet and REPORT/fits.json (with samples): they replace the
    rows of the same law and family; other laws' and families' rows are kept."""
    report_dir = Path(report_dir)
    replaced = {(f.law, f.family) for f in fits}
    table = fits_table(fits)
    path = report_dir / "fits.parquet"
    if path.is_file():
        old = pq.read_table(path).to_pylist()
        keep = [{"family": None, **r} for r in old if (r["law"], r.get("family")) not in replaced]
        table = pa.concat_tables([pa.Table.from_pylist(keep, schema=FITS_SCHEMA), table])
    write_parquet(path, table)
    doc_path = report_dir / "fits.json"
    doc = _read_fits_json(doc_path) if doc_path.is_file() else {}
    for law in {law for law, _ in replaced}:
        kept = [f for f in doc.get(law, []) if (law, f.get("family")) not in replaced]
        doc[law] = kept + [f.to_json(with_samples=True) for f in fits if f.law == law]
    write_json(doc_path, doc, dumps=dumps, indent=1)


def _read_fits_json(path: Path) -> dict[str, Any]:
    """The other laws' fits to keep; a file that isn't a JSON object is an error, not silently replaced."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PointsError(f"{path}: not readable JSON ({' '.join(str(exc).split())}); move it aside to write "
                          f"new fits") from None
    if not isinstance(doc, dict):
        raise PointsError(f"{path}: not a fits.json (expected an object of fits by law); move it aside to "
                          f"write new fits")
    return doc


def fits_json(fits: list[LawFit]) -> Any:
    """What `scalelab scaling fit --json` prints: one object, or a list of per-size objects (finite_json
    turns the non-finite numbers into null)."""
    if len(fits) == 1 and fits[0].group is None:
        return finite(fits[0].to_json())
    return finite({"law": fits[0].law, "fits": [f.to_json() for f in fits]})
