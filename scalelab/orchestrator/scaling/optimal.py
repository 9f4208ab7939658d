"""Compute-optimal allocation from a Chinchilla fit (Hoffmann et al. 2022, eq. 4).

With C ≈ 6·N·D and L = E + A/N^α + B/D^β, minimizing L at fixed C gives
N_opt = G·(C/6)^(β/(α+β)), D_opt = G⁻¹·(C/6)^(α/(α+β)), G = (α·A / (β·B))^(1/(α+β)).
"""

from __future__ import annotations

from typing import Any

from scalelab.orchestrator.scaling.laws import predict_loss

# Hoffmann et al. (2022), approach 3, as published.
HOFFMANN_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt": approach 3 refitted to the
# paper's own data; unlike the published constants it agrees with approaches 1 and 2 (~20 tokens/param).
BESIROGLU_2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def compute_optimal(c: dict[str, float], flops: float) -> dict[str, Any]:
    alpha, beta, a, b = c["alpha"], c["beta"], c["A"], c["B"]
    if alpha <= 0 or beta <= 0:
        raise ValueError("alpha and beta must be positive for a compute-optimal allocation")
    g = (alpha * a / (beta * b)) ** (1.0 / (alpha + beta))
    n = g * (flops / 6.0) ** (beta / (alpha + beta))
    d = (flops / 6.0) ** (alpha / (alpha + beta)) / g
    loss = float(predict_loss("chinchilla", c, n, d))
    return {"flops": flops, "params": n, "tokens": d, "tokens_per_param": d / n, "loss": loss,
            "n_exponent": beta / (alpha + beta), "d_exponent": alpha / (alpha + beta)}
