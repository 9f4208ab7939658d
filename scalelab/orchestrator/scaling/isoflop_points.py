"""The (budget C, size N, loss) points of an IsoFLOP fit, from a sweep's runs.parquet or any table.

A sweep's runs.parquet: complete runs with a `flops_budget`; N = params_non_embedding (or all
params), loss = final_val_loss, tokens = tokens_seen, and each run's FLOPs per token = flops /
tokens_seen, as its training loop counted them (output layer and attention included). Any other
table needs `params`, `loss` and `flops_budget` columns (`tokens` optional); with no per-token FLOPs
known, a size N spends 6·N FLOPs per token (C = 6·N·D), and the fit says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scalelab.orchestrator.scaling.points import PointsError

RULE_COUNTED = "flops_per_token"  # D = C / the FLOPs per token the runs counted
RULE_6N = "6N"                    # D = C / (6·N)


@dataclass(frozen=True)
class IsoFlopPoints:
    params: np.ndarray          # N
    loss: np.ndarray
    budget: np.ndarray          # C, FLOPs
    tokens: np.ndarray          # tokens trained (given, or C / FLOPs per token)
    counted_flops_per_token: Optional[np.ndarray]  # per run, as the loop counted; None: the 6N rule
    labels: list[str]
    source: str
    n_kind: str

    def __len__(self) -> int:
        return len(self.loss)

    @property
    def d_rule(self) -> str:
        return RULE_6N if self.counted_flops_per_token is None else RULE_COUNTED

    def budgets(self) -> np.ndarray:
        return np.unique(self.budget)

    def at_budget(self, budget: float) -> tuple[np.ndarray, np.ndarray]:
        """(N, loss) of the runs at one budget."""
        mask = self.budget == budget
        return self.params[mask], self.loss[mask]

    def flops_per_token(self, n: np.ndarray | float) -> np.ndarray:
        """FLOPs per token of a size N: 6N, or log-log interpolated between the sizes the runs trained
        (linear in log-log past the ends: FLOPs per token grow like N, embeddings and attention aside)."""
        n = np.asarray(n, dtype=float)
        if self.counted_flops_per_token is None:
            return 6.0 * n
        sizes, first = np.unique(self.params, return_index=True)
        x, y = np.log(sizes), np.log(self.counted_flops_per_token[first])
        if len(x) == 1:
            return np.exp(y[0]) * n / sizes[0]
        ln_n = np.log(n)
        inside = np.interp(ln_n, x, y)
        low = y[0] + (ln_n - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
        high = y[-1] + (ln_n - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
        return np.exp(np.where(ln_n < x[0], low, np.where(ln_n > x[-1], high, inside)))

    def tokens_at(self, budget: float, n: np.ndarray | float) -> np.ndarray:
        """D that budget C buys for a size N."""
        return budget / self.flops_per_token(n)


def _column(table: pa.Table, name: str, source: str) -> np.ndarray:
    values = table[name].to_numpy(zero_copy_only=False).astype(float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
        raise PointsError(f"{source}: column {name}: values must be positive numbers (row {rows})")
    return values


def isoflop_points(table: pa.Table, source: str,
                   params: Literal["non_embedding", "all"] = "non_embedding") -> Optional[IsoFlopPoints]:
    """The table's IsoFLOP points; None when it has no `flops_budget` values (no IsoFLOP runs)."""
    cols = set(table.column_names)
    if "flops_budget" not in cols:
        return None
    table = table.filter(pc.is_valid(table["flops_budget"]))
    sweep = {"final_val_loss", "params_non_embedding", "tokens_seen", "flops"} <= cols
    if sweep and "status" in cols:
        table = table.filter(pc.equal(table["status"], "complete"))
    if table.num_rows == 0:
        return None
    labels = table["run_id"].to_pylist() if "run_id" in cols else [str(i + 1) for i in range(table.num_rows)]
    budget = _column(table, "flops_budget", source)
    if sweep:
        tokens = _column(table, "tokens_seen", source)
        n_col = "params_non_embedding" if params == "non_embedding" else "params"
        return IsoFlopPoints(_column(table, n_col, source), _column(table, "final_val_loss", source), budget, tokens,
                             _column(table, "flops", source) / tokens, labels, source, params)
    missing = [c for c in ("params", "loss") if c not in cols]
    if missing:
        raise PointsError(f"{source}: missing column(s) {', '.join(missing)}; an IsoFLOP table needs params (N), "
                          f"loss and flops_budget (C), or is a sweep's runs.parquet")
    n = _column(table, "params", source)
    tokens = _column(table, "tokens", source) if "tokens" in cols else budget / (6.0 * n)
    return IsoFlopPoints(n, _column(table, "loss", source), budget, tokens, None, labels, source, "as given")
