"""The `isoflop` section of a sweep config: compute budgets, and how many model sizes each one trains.

An IsoFLOP sweep (Hoffmann et al. 2022, approach 2) trains, at each fixed compute budget C, several
model sizes N, each on exactly the tokens the budget buys: D = C / flops_per_token(model, seq_len).
Loss against log N is then a valley per budget whose bottom is the compute-optimal size N*(C).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from scalelab.core.config_fields import Section


def parse_flops(value: float | int | str) -> float:
    """1e15, "1e15", "3.2e17" -> FLOPs. YAML reads `1e15` (no dot) as a string, so strings are accepted."""
    try:
        flops = float(str(value).strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"{value!r} is not a FLOP count (like 1e15 or 3.5e17)") from None
    if not flops > 0 or flops == float("inf"):
        raise ValueError(f"{value!r}: a budget must be a positive, finite FLOP count")
    return flops


Flops = Annotated[float, BeforeValidator(parse_flops)]


class IsoFlopSpec(Section):
    """Compute budgets and the model sizes trained at each (with `tokens: {policy: isoflop}`).

    ```yaml
    tokens: {policy: isoflop}
    isoflop:
      budgets: [1e15, 3e15, 1e16]   # C in FLOPs, as the training loop spends them (see below)
      models_per_budget: 5          # sizes per budget (>= 3: a parabola has three coefficients)
      spread: 4.0                   # sizes are picked within N_opt/4 .. N_opt·4 around the prior's N_opt
      prior: tokens_per_param       # N_opt(C) from D = 20·N and C = 6·N·D; or besiroglu / hoffmann
      tokens_per_param: 20
      max_epochs: 1.0               # passes over the chosen scale a run may make
    ```

    Sizes come from the sweep's `models` list, not from a generated shape family: the user owns
    the shapes (depth/width ratio, heads), one shape is reused across budgets as in Hoffmann et
    al.'s own sweeps, and every run stays an ordinary run of a named model. For each budget the
    planner centres a log-spaced grid of `models_per_budget` sizes on the prior's N_opt(C) and
    takes, for each grid point from the centre outwards, the nearest unused model whose size lies
    within the spread and which gets at least one optimizer step. List more shapes than
    `models_per_budget`, spaced by ~1.5-2x in N, so every budget finds sizes on both sides of its
    optimum. N here is all parameters (as `tokens: per_param` counts it). The prior only centres
    the grid: the fit finds the real optimum, and flags budgets whose minimum lies outside the
    sizes trained.

    FLOPs are counted as the training loop spends them, `scalelab.training.flops.flops_per_token`: 6·N_matmul
    (every weight a token meets, the tied embedding once as the output layer, position embeddings
    not) plus attention's 12·L·d·T. A run trains round(C / (flops_per_token · step tokens)) steps,
    so it spends C to within half a step's FLOPs.

    Data: a run reads the smallest scale (of `scales`; empty: all) that holds its D tokens, so each
    token is seen once; if no scale is large enough it repeats the largest, up to `max_epochs`
    passes (default 1: repeated tokens are worth less, which would tilt the smallest models' losses,
    the ones that need the most data, and move the fitted optimum).
    """

    budgets: list[Flops] = Field(..., min_length=1, description="Compute budgets C in FLOPs.")
    models_per_budget: int = Field(5, ge=3, description="Model sizes trained per budget.")
    spread: float = Field(4.0, gt=1, description="Sizes lie within N_opt/spread .. N_opt·spread.")
    prior: Literal["tokens_per_param", "besiroglu", "hoffmann"] = "tokens_per_param"
    tokens_per_param: float = Field(20.0, gt=0, description="With prior tokens_per_param: D_opt = this × N_opt.")
    max_epochs: float = Field(1.0, gt=0, description="Passes over the chosen scale a run may make.")

    @field_validator("budgets")
    @classmethod
    def _distinct(cls, budgets: list[float]) -> list[float]:
        if len(set(budgets)) != len(budgets):
            raise ValueError(f"budgets repeat: {budgets}")
        return sorted(budgets)
