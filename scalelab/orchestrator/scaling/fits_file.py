"""The constants (and bootstrap samples) of a Chinchilla-type law for `predict` and `optimal`: from a
report's fits.json, or published ones (Hoffmann et al. 2022, Besiroglu et al. 2024)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from scalelab.orchestrator.scaling.optimal import BESIROGLU_2024, HOFFMANN_2022

PUBLISHED = {"hoffmann": HOFFMANN_2022, "besiroglu": BESIROGLU_2024}
_LAWS = ("chinchilla", "data-constrained")


class FitsFileError(ValueError):
    """No usable law: a missing or malformed fits.json, or an unknown published name; one line."""


def law_constants(fit_path: Optional[Path], published: Optional[str]) -> dict[str, Any]:
    """{"law", "E", "A", "B", "alpha", "beta"[, "R_star"], "samples"} from `published` or `fit_path`."""
    if published is not None:
        if published not in PUBLISHED:
            raise FitsFileError(f"--published {published}: must be hoffmann or besiroglu")
        return {"law": "chinchilla", **PUBLISHED[published], "samples": []}
    if fit_path is None:
        raise FitsFileError("give --fit (a report folder with fits.json, or a fits.json) or "
                            "--published hoffmann|besiroglu")
    path = fit_path / "fits.json" if fit_path.is_dir() else fit_path
    doc = _read(path)
    for law in _LAWS:
        if doc.get(law):
            return _constants(path, law, doc[law])
    raise FitsFileError(f"{path}: holds no chinchilla or data-constrained fit (fit one with --law chinchilla)")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FitsFileError(f"{path}: not found (run `scalelab report` or `scalelab scaling fit` on the report "
                            "folder first)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FitsFileError(f"{path}: not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict):
        raise FitsFileError(f"{path}: not a fits.json (expected an object of fits by law)")
    return doc


def _constants(path: Path, law: str, entries: Any) -> dict[str, Any]:
    fit = entries[0] if isinstance(entries, list) and isinstance(entries[0], dict) else {}
    needed = ("E", "A", "B", "alpha", "beta") + (("R_star",) if law == "data-constrained" else ())
    bad = [k for k in needed if not _is_number(fit.get(k))]
    if bad:
        raise FitsFileError(f"{path}: the {law} fit lacks a numeric {', '.join(bad)}")
    samples = fit.get("samples") if isinstance(fit.get("samples"), list) else []
    fit["samples"] = [s for s in samples if isinstance(s, dict) and all(isinstance(s.get(k), (int, float)) for k in needed)]
    fit["law"] = law
    return fit


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
