"""The (N, D, loss) points a fit reads, from a sweep's runs.parquet or anyone's CSV / Parquet.

A generic table needs `params`, `tokens` and `loss` columns (and `epochs`, passes over the unique
tokens, for the data-constrained law). A sweep's runs.parquet is recognised by its columns and
mapped: N = params_non_embedding by default (Kaplan's N; `params="all"` for every parameter),
D = unique_tokens (the scale), epochs = epochs, and the loss is the run's best validation loss:
`best_val_bpb` (bits per UTF-8 byte, comparable across tokenizers) with metric="bpb", or
`best_val_loss` (nats per token) with metric="nats". Only complete runs count, and runs whose
report says they did not converge are left out; both facts are kept as notes that fits carry.

A runs.parquet may hold several model families (its `family` column; older ones are all GPTs).
Points are always of one family: BERT's loss is per masked token, a different quantity from a
next-token loss, and a GPT's and an LSTM's laws are the comparison, not one law. A table of several
families needs `family=`; the report fits each family on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

Metric = Literal["bpb", "nats"]
METRICS = ("bpb", "nats")
LOSS_COLUMNS = {"bpb": "best_val_bpb", "nats": "best_val_loss"}
RUNS_COLUMNS = {"unique_tokens", "params_non_embedding"}  # with a loss column: a sweep's runs.parquet


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
    loss_kind: str = "loss"          # the column the loss came from (best_val_bpb, best_val_loss, loss)
    notes: tuple[str, ...] = ()      # what the reader should know about how the points were chosen
    family: Optional[str] = None     # the model family of a sweep's runs (None: a generic table)

    def __len__(self) -> int:
        return len(self.loss)

    def astype(self, dtype: type) -> "Points":
        return replace(self, params=self.params.astype(dtype), tokens=self.tokens.astype(dtype),
                       loss=self.loss.astype(dtype), epochs=self.epochs.astype(dtype))

    def subset(self, mask: np.ndarray) -> "Points":
        return replace(self, params=self.params[mask], tokens=self.tokens[mask], loss=self.loss[mask],
                       epochs=self.epochs[mask], labels=[l for l, m in zip(self.labels, mask) if m])


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
        raise PointsError(f"{path}: not a readable CSV or Parquet table ({_one_line(exc)})") from None


def families_in(table: pa.Table) -> list[str]:
    """The model families of a sweep's runs, sorted; runs from before families are GPTs."""
    if "family" not in table.column_names:
        return ["gpt"] if RUNS_COLUMNS <= set(table.column_names) else []
    return sorted({f or "gpt" for f in table["family"].to_pylist()})


def one_family(table: pa.Table, source: str, family: Optional[str]) -> tuple[pa.Table, str]:
    """The runs of `family`; with none named, the table must hold one family."""
    present = families_in(table)
    if family is None:
        if len(present) > 1:
            raise PointsError(f"{source}: runs of families {', '.join(present)}: a fit reads one family (a masked-"
                              f"token loss is not a next-token loss); choose one with --family")
        family = present[0] if present else "gpt"
    if family not in present:
        raise PointsError(f"{source}: no runs of family {family}; it has {', '.join(present) or 'none'}")
    if "family" in table.column_names:
        table = table.filter(pc.equal(pc.fill_null(table["family"], "gpt"), family))
    return table, family


def points_from_table(table: pa.Table, source: str, params: Literal["non_embedding", "all"] = "non_embedding",
                      metric: Metric = "bpb", family: Optional[str] = None) -> Points:
    if metric not in METRICS:
        raise PointsError(f"metric {metric}: must be one of {', '.join(METRICS)}")
    cols = set(table.column_names)
    notes: list[str] = []
    if RUNS_COLUMNS <= cols and cols & {"best_val_bpb", "best_val_loss"}:
        table, family = one_family(table, source, family)
        table, loss_col, notes = _sweep_runs(table, source, metric)
        if family == "bert":
            notes.append("bert: the loss is BERT's masked-token loss (over the 15% selected tokens, bits per byte of "
                         "their text), not a next-token loss; compare its law's shape with the others', not its level")
        mapping = {"params": "params_non_embedding" if params == "non_embedding" else "params",
                   "tokens": "unique_tokens", "loss": loss_col}
        n_kind = params
    else:
        missing = [c for c in ("params", "tokens", "loss") if c not in cols]
        if missing:
            raise PointsError(f"{source}: missing column(s) {', '.join(missing)}; a table needs params (N), "
                              f"tokens (D) and loss (or be a sweep's runs.parquet); it has {', '.join(sorted(cols))}")
        mapping = {"params": "params", "tokens": "tokens", "loss": "loss"}
        n_kind = "as given"
    if table.num_rows == 0:
        raise PointsError(f"{source}: no rows to fit")
    values = {key: _positive_column(table, col, source) for key, col in mapping.items()}
    epochs = _column(table, "epochs", source) if "epochs" in cols else np.ones(table.num_rows)
    labels = [str(v) for v in table["run_id"].to_pylist()] if "run_id" in cols \
        else [str(i + 1) for i in range(table.num_rows)]
    points = Points(values["params"], values["tokens"], values["loss"], np.nan_to_num(epochs, nan=1.0),
                    labels, source, n_kind, mapping["loss"], tuple(notes), family)
    return in_canonical_order(points)


def in_canonical_order(points: Points) -> Points:
    """The points sorted by (N, D, loss, label): a fit and its bootstrap, which draws by position,
    then depend on the points alone, not on the order of the table's rows (run ids, finish order)."""
    order = sorted(range(len(points)), key=lambda i: (points.params[i], points.tokens[i], points.loss[i],
                                                      points.labels[i]))
    index = np.array(order, dtype=np.int64)
    return replace(points, params=points.params[index], tokens=points.tokens[index], loss=points.loss[index],
                   epochs=points.epochs[index], labels=[points.labels[i] for i in order])


def _sweep_runs(table: pa.Table, source: str, metric: Metric) -> tuple[pa.Table, str, list[str]]:
    """A sweep's complete, converged runs and the loss column to read; notes on what was left out."""
    notes = []
    if "status" in table.column_names:
        table = table.filter(pc.equal(table["status"], "complete"))
    if table.num_rows == 0:
        raise PointsError(f"{source}: no complete runs to fit")
    if "converged" in table.column_names:
        failed = pc.fill_null(pc.equal(table["converged"], False), False)
        left_out = [str(r) for r in table.filter(failed)["run_id"].to_pylist()] if "run_id" in table.column_names \
            else [str(i + 1) for i in np.flatnonzero(failed.to_numpy(zero_copy_only=False))]
        if left_out:
            table = table.filter(pc.invert(failed))
            notes.append(f"left out {len(left_out)} run(s) that did not converge: {', '.join(left_out)}")
    loss_col = LOSS_COLUMNS[metric]
    if metric == "bpb" and ("best_val_bpb" not in table.column_names or table["best_val_bpb"].null_count > 0):
        why = "has no best_val_bpb column" if "best_val_bpb" not in table.column_names \
            else f"has {table['best_val_bpb'].null_count} run(s) without best_val_bpb"
        loss_col = "best_val_loss"
        notes.append(f"loss is best_val_loss in nats per token, not bits per byte: the table {why} "
                     f"(reports from before bpb was recorded)")
    if loss_col not in table.column_names:
        raise PointsError(f"{source}: no {loss_col} column (metric {metric})")
    return table, loss_col, notes


def _column(table: pa.Table, col: str, source: str) -> np.ndarray:
    column = table[col]
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
        example = next((v for v in column.to_pylist() if v is not None), "")
        raise PointsError(f"{source}: column {col} must be numeric; it holds {column.type} values (e.g. {example!r})")
    return column.to_numpy(zero_copy_only=False).astype(float)


def _positive_column(table: pa.Table, col: str, source: str) -> np.ndarray:
    arr = _column(table, col, source)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
        raise PointsError(f"{source}: column {col}: values must be positive numbers (row {rows})")
    return arr


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def load_points(path: str | Path, params: Literal["non_embedding", "all"] = "non_embedding",
                table: Optional[pa.Table] = None, metric: Metric = "bpb", family: Optional[str] = None) -> Points:
    return points_from_table(table if table is not None else read_table(path), str(path), params, metric, family)
