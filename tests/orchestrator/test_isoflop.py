"""IsoFLOP sweeps: the planner's budgets and FLOP counts, the approach-2 fit on synthetic runs, the plot.

No Ray and no training: planning reads a small manifest.json written here (planning reads only its
tokenizer and scales), and the fits run on losses drawn from known Chinchilla constants.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from orchestrator.isoflop_plan import plan_isoflop, prior_optimum
from orchestrator.plan import SweepError, plan_sweep
from orchestrator.reports import RUNS_SCHEMA, run_row
from orchestrator.sweep_config import SweepConfig
from scalelab.config_errors import ConfigError, validate
from training.config import REPO
from training.flops import flops_per_token
from training.model import ModelConfig

SCALES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}
# Two-layer models whose sizes (all parameters, vocabulary 4096) step by ~1.4x from 88k to 1.07M.
WIDTHS = (16, 24, 32, 48, 64, 96, 128, 192, 256)
STEP_TOKENS = 4 * 2 * 128  # micro-batch 4 × 2 workers × seq_len 128


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    scales = {name: {"tokens": n, "shards": [], "last_shard_tokens": 0} for name, n in SCALES.items()}
    (folder / "manifest.json").write_text(json.dumps({"tokenizer": {"vocab_size": 4096, "eod_id": 0},
                                                      "scales": scales, "shards": []}))
    return folder


def sweep(corpus, tmp_path, **isoflop) -> SweepConfig:
    data = {"name": "iso", "corpus": str(corpus), "output": str(tmp_path / "out"),
            "models": [{"name": f"w{d}", "n_layer": 2, "n_head": 2, "d_model": d} for d in WIDTHS],
            "tokens": {"policy": "isoflop"}, "isoflop": {"budgets": ["1e13", 3e12], **isoflop},
            "base": str(REPO / "configs" / "train" / "sample.yaml"), "train": {"batch": {"micro_batch_size": 4}},
            "resources": {"workers": 2}}
    return validate(SweepConfig, data, "iso.yaml")


def model_of(width: int) -> ModelConfig:
    return ModelConfig(n_layer=2, n_head=2, d_model=width, vocab_size=4096, context=128)


def test_flops_per_token_counts_the_output_layer_and_attention():
    # w32 by hand: blocks 2 × (2 LayerNorms 128 + 12·32² + 9·32 biases) + final LayerNorm 64 = 25,472, plus the
    # tied embedding once as the output layer (4096 × 32), not the position embeddings; attention 12·L·d·T.
    assert flops_per_token(model_of(32), 128) == 6 * (25_472 + 4096 * 32) + 12 * 2 * 32 * 128 == 1_037_568


def test_plan_spends_each_budget_within_one_step(corpus, tmp_path):
    runs = plan_isoflop(sweep(corpus, tmp_path))
    assert sorted({r.budget for r in runs}) == [3e12, 1e13]
    for r in runs:
        fpt = flops_per_token(model_of(int(r.spec.model[1:])), 128)
        assert r.flops_per_token == fpt
        assert r.spec.tokens % STEP_TOKENS == 0 and r.spec.tokens == r.spec.steps * STEP_TOKENS
        assert abs(r.spec.tokens * fpt - r.budget) <= fpt * STEP_TOKENS / 2  # D·flops_per_token = C within a step
        assert r.spec.budget_flops == r.budget and r.spec.run_id.startswith(("C3e12-", "C1e13-"))
        assert r.spec.config.train.tokens == r.spec.tokens and r.spec.run_dir.name == r.spec.run_id
        # One pass over the smallest scale that holds the run's windows.
        assert r.spec.epochs <= 1.0
        windows = {s: (n - 1) // 128 for s, n in SCALES.items()}
        fits = [s for s, w in windows.items() if w >= r.spec.steps * 8]
        assert r.spec.scale == min(fits, key=SCALES.get)
    assert len({r.spec.run_id for r in runs}) == len(runs)


def test_plan_picks_sizes_on_both_sides_of_the_prior_optimum(corpus, tmp_path):
    cfg = sweep(corpus, tmp_path, models_per_budget=5, spread=3.0)
    runs = plan_isoflop(cfg)
    for budget in (3e12, 1e13):
        n_opt = math.sqrt(budget / (6 * 20))  # the default prior: 20 tokens per parameter
        assert prior_optimum(cfg.isoflop, budget) == pytest.approx(n_opt)
        sizes = sorted(r.spec.params for r in runs if r.budget == budget)
        assert len(sizes) == 5
        assert all(n_opt / 3.0 <= n <= n_opt * 3.0 for n in sizes)
        assert sizes[0] < n_opt / 1.5 and sizes[-1] > n_opt * 1.5  # spread out, not bunched at the centre
    # The hook: plan_sweep hands the policy to the IsoFLOP planner.
    assert [s.run_id for s in plan_sweep(cfg)] == [r.spec.run_id for r in runs]


def test_runs_parquet_row_records_the_budget(corpus, tmp_path):
    spec = plan_isoflop(sweep(corpus, tmp_path))[0].spec
    row = run_row("iso", spec, "pending", 0, None, None, None, None)
    assert row["flops_budget"] == 3e12 and set(row) == set(RUNS_SCHEMA.names)


def test_repeats_need_max_epochs(corpus, tmp_path):
    small = sweep(corpus, tmp_path).model_copy(update={"scales": ["100k", "1M"]})  # the candidate scales
    with pytest.raises(SweepError) as exc:
        plan_isoflop(small, "iso.yaml")
    message = str(exc.value)
    assert message.startswith("iso.yaml: corpus: at budget 3e+12 FLOPs w") and "isoflop.max_epochs 1:" in message
    assert "\n" not in message
    allowed = small.model_copy(update={"isoflop": small.isoflop.model_copy(update={"max_epochs": 30.0})})
    runs = plan_isoflop(allowed)
    repeated = [r.spec for r in runs if r.spec.epochs > 1]
    assert repeated and all(s.scale == "1M" for s in repeated)
    for s in repeated:  # epochs recorded: windows trained over the scale's windows
        assert s.epochs == pytest.approx(s.tokens / 128 / ((1_000_000 - 1) // 128))


def test_one_line_errors_name_the_field(corpus, tmp_path):
    with pytest.raises(SweepError, match=r"^iso\.yaml: isoflop\.budgets: 1e\+06 FLOPs buys less than one optimizer "
                                         r"step of any model; the cheapest step \(w16: 1,024 tokens"):
        plan_isoflop(sweep(corpus, tmp_path, budgets=[1e6]), "iso.yaml")
    with pytest.raises(SweepError, match=r"^iso\.yaml: models: at budget 1e\+13 FLOPs .* only 2 model\(s\)"):
        plan_isoflop(sweep(corpus, tmp_path, budgets=[1e13], spread=1.3), "iso.yaml")
    with pytest.raises(ConfigError, match="isoflop.budgets.*'lots' is not a FLOP count"):
        sweep(corpus, tmp_path, budgets=["lots"])
    with pytest.raises(ConfigError, match="isoflop.models_per_budget"):
        sweep(corpus, tmp_path, models_per_budget=2)
    data = sweep(corpus, tmp_path).model_dump()
    with pytest.raises(ConfigError, match="tokens.policy isoflop and the isoflop section"):
        validate(SweepConfig, {**data, "isoflop": None}, "iso.yaml")
