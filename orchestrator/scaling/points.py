"""The (N, D, loss) points a fit reads, from a sweep's runs.parquet or anyone's CSV / Parquet.

A generic table needs `params`, `tokens` and `loss` columns (and `epochs`, passes over the unique
tokens, for the data-constrained law). A sweep's runs.parquet is recognised by its columns and
mapped: N = params_non_embedding by default (Kaplan's N; `params="all"` for every parameter),
D = unique_tokens (the scale), loss = final_val_loss, epochs = epochs; only complete runs count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq


class PointsError(ValueError):
    """The table can't be fitted (missing columns, bad values, too few points); phrased for users."""


@dataclass(frozen=True)
class Points:
    params: np.ndarray   # N
    tokens: np.ndarray   # D (unique tokens)
    loss: np.ndarray
    epochs: np.ndarray   # passes over D (1.0 where unknown)
    labels: list[str]    # run ids, or row numbers
    source: str
    n_kind: str          # which N: "non_embedding", "all", or "as given"

    def __len__(self) -> int:
        return len(self.loss)

    def subset(self, mask: np.ndarray) -> "Points":
        return Points(self.params[mask], self.tokens[mask], self.loss[mask], self.epochs[mask],
                      [l for l, m in zip(self.labels, mask) if m], self.source, self.n_kind)


def read_table(path: str | Path) -> pa.Table:
    path = Path(path)
    if path.is_dir():
        path = path / "runs.parquet"
    if not path.is_file():
        raise PointsError(f"{path}: not found")
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter="\t" if path.suffix == ".tsv" else ","))
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise PointsError(f"{path}: not a readable CSV or Parquet table ({exc})") from None


def points_from_table(table: pa.Table, source: str, params: Literal["non_embedding", "all"] = "non_embedding") -> Points:
    cols = set(table.column_names)
    if {"final_val_loss", "unique_tokens", "params_non_embedding"} <= cols:  # a sweep's runs.parquet
        if "status" in cols:
            table = table.filter(pa.compute.equal(table["status"], "complete"))
        n_col = "params_non_embedding" if params == "non_embedding" else "params"
        mapping = {"params": n_col, "tokens": "unique_tokens", "loss": "final_val_loss"}
        n_kind = params
    else:
        missing = [c for c in ("params", "tokens", "loss") if c not in cols]
        if missing:
            raise PointsError(f"{source}: missing column(s) {', '.join(missing)}; a table needs params (N), "
                              f"tokens (D) and loss (or be a sweep's runs.parquet); it has {', '.join(sorted(cols))}")
        mapping = {"params": "params", "tokens": "tokens", "loss": "loss"}
        n_kind = "as given"
    values = {}
    for key, col in mapping.items():
        arr = table[col].to_numpy(zero_copy_only=False).astype(float)
        bad = ~np.isfinite(arr) | (arr <= 0)
        if bad.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
            raise PointsError(f"{source}: column {col}: values must be positive numbers (row {rows})")
        values[key] = arr
    epochs = table["epochs"].to_numpy(zero_copy_only=False).astype(float) if "epochs" in cols \
        else np.ones(table.num_rows)
    labels = table["run_id"].to_pylist() if "run_id" in cols else [str(i + 1) for i in range(table.num_rows)]
    return Points(values["params"], values["tokens"], values["loss"], np.nan_to_num(epochs, nan=1.0),
                  labels, source, n_kind)


def load_points(path: str | Path, params: Literal["non_embedding", "all"] = "non_embedding",
                table: Optional[pa.Table] = None) -> Points:
    return points_from_table(table if table is not None else read_table(path), str(path), params)
