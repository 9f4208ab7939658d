"""IsoFLOP runs (`tokens: {policy: isoflop}`): per budget C, model sizes around the prior's optimum,
each trained on the tokens C buys. See `IsoFlopSpec` for the config and the choices behind it.

Every run is planned by `plan_sweep` itself, as a fixed-token run of one model on one scale, so an
IsoFLOP run is resolved, hashed and validated exactly like any other run; this module only decides
which (model, tokens, scale) each budget gets.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalelab.orchestrator.isoflop_config import IsoFlopSpec
from scalelab.orchestrator.plan import RunSpec, SweepError, plan_sweep
from scalelab.orchestrator.scaling.optimal import BESIROGLU_2024, HOFFMANN_2022, compute_optimal
from scalelab.orchestrator.sweep_config import ModelEntry, SweepConfig, TokensPolicy
from scalelab.training.data import Corpus, DataError
from scalelab.training.flops import flops_per_token
from scalelab.core.human_count import human_count
from scalelab.core.storage import is_url


@dataclass(frozen=True)
class SizedModel:
    """A model of the sweep with what the budget arithmetic needs."""

    entry: ModelEntry
    params: int               # N, all parameters (what the prior's N_opt counts)
    flops_per_token: float    # as the training loop counts them
    windows_per_step: int     # global batch, in windows of seq_len
    seq_len: int

    @property
    def step_tokens(self) -> int:
        return self.windows_per_step * self.seq_len

    def steps_for(self, budget: float) -> int:
        """Optimizer steps whose FLOPs come nearest the budget (within half a step)."""
        return int(round(budget / (self.flops_per_token * self.step_tokens)))


@dataclass(frozen=True)
class IsoFlopRun:
    spec: RunSpec
    budget: float             # C, FLOPs
    prior_params: float       # the prior's N_opt(C), which centred the sizes
    flops_per_token: float

    @property
    def flops(self) -> float:
        """FLOPs the run spends: flops_per_token × the tokens it trains on."""
        return self.flops_per_token * self.spec.tokens


def prior_optimum(spec: IsoFlopSpec, budget: float) -> float:
    """N_opt(C) of the prior, with C = 6·N·D as the published fits count compute."""
    if spec.prior == "tokens_per_param":
        return math.sqrt(budget / (6.0 * spec.tokens_per_param))  # D = r·N, C = 6·N·D
    constants = BESIROGLU_2024 if spec.prior == "besiroglu" else HOFFMANN_2022
    return compute_optimal(constants, budget)["params"]


def _narrowed(sweep: SweepConfig, entry: ModelEntry, scale: str, tokens: int, seeds: list[int]) -> SweepConfig:
    """The sweep cut down to one model on one scale for a fixed number of tokens."""
    return sweep.model_copy(update={"models": [entry], "scales": [scale], "seeds": seeds, "isoflop": None,
                                    "tokens": TokensPolicy(policy="fixed", value=tokens)})


def size_models(sweep: SweepConfig, corpus: Corpus, scale: str, source: str) -> list[SizedModel]:
    """Each model's N and FLOPs per token, from a one-token probe plan (the same resolution as the runs)."""
    sized = []
    for entry in sweep.model_entries():
        (probe,) = plan_sweep(_narrowed(sweep, entry, scale, 1, sweep.seeds[:1]), source)
        cfg = probe.config
        model = cfg.model.build(corpus.vocab_size, cfg.data.seq_len)
        windows = cfg.batch.micro_batch_size * cfg.batch.grad_accum * sweep.resources.workers
        sized.append(SizedModel(entry, probe.params, flops_per_token(model, cfg.data.seq_len), windows,
                                cfg.data.seq_len))
    return sized


def pick_sizes(models: list[SizedModel], n_opt: float, spec: IsoFlopSpec) -> list[SizedModel]:
    """For each point of a log grid over N_opt/spread .. N_opt·spread, centre first, the nearest unused model."""
    lo, hi = math.log(n_opt / spec.spread), math.log(n_opt * spec.spread)
    inside = [m for m in models if lo <= math.log(m.params) <= hi]
    grid = sorted(np.linspace(lo, hi, spec.models_per_budget), key=lambda g: abs(g - math.log(n_opt)))
    chosen: list[SizedModel] = []
    for g in grid:
        left = [m for m in inside if m not in chosen]
        if not left:
            break
        chosen.append(min(left, key=lambda m: abs(math.log(m.params) - g)))
    return sorted(chosen, key=lambda m: m.params)


def pick_scale(scales: list[tuple[str, int]], model: SizedModel, steps: int, spec: IsoFlopSpec,
               budget: float, source: str) -> str:
    """The smallest scale holding the run's windows (one pass), else the largest within max_epochs."""
    needed = steps * model.windows_per_step
    for name, tokens in scales:  # smallest first
        if (tokens - 1) // model.seq_len >= needed:
            return name
    name, tokens = scales[-1]
    epochs = needed / max(1, (tokens - 1) // model.seq_len)
    if epochs > spec.max_epochs:
        raise SweepError(f"{source}: corpus: at budget {budget:.3g} FLOPs {model.entry.name} trains on "
                         f"{steps * model.step_tokens:,} tokens, {epochs:.2f} passes over the largest scale {name} "
                         f"({tokens:,} tokens), more than isoflop.max_epochs {spec.max_epochs:g}: add a larger scale, "
                         f"lower the budget or raise isoflop.max_epochs")
    return name


def _budget_models(models: list[SizedModel], budget: float, spec: IsoFlopSpec, source: str) -> list[SizedModel]:
    trainable = [m for m in models if m.steps_for(budget) >= 1]
    if not trainable:
        small = min(models, key=lambda m: m.flops_per_token * m.step_tokens)
        raise SweepError(f"{source}: isoflop.budgets: {budget:.3g} FLOPs buys less than one optimizer step of any "
                         f"model; the cheapest step ({small.entry.name}: {small.step_tokens:,} tokens × "
                         f"{small.flops_per_token:.3g} FLOPs/token) costs "
                         f"{small.flops_per_token * small.step_tokens:.3g}")
    n_opt = prior_optimum(spec, budget)
    chosen = pick_sizes(trainable, n_opt, spec)
    if len(chosen) < 3:
        found = ", ".join(f"{m.entry.name} ({human_count(m.params)})" for m in chosen) or "none"
        raise SweepError(f"{source}: models: at budget {budget:.3g} FLOPs the prior's N_opt is {human_count(n_opt)} "
                         f"and only {len(chosen)} model(s) within isoflop.spread {spec.spread:g}× of it get a step "
                         f"({found}); a parabola needs 3: add sizes near {human_count(n_opt)} or widen isoflop.spread")
    return chosen


def budget_label(budget: float) -> str:
    """3e15 -> "C3e15": the readable start of a run id."""
    mantissa, exponent = f"{budget:.3g}".split("e") if "e" in f"{budget:.3g}" else (f"{budget:.3g}", "0")
    return f"C{mantissa}e{int(exponent)}"


def _relabel(spec: RunSpec, budget: float) -> RunSpec:
    """Put the budget in the run id (the hash, of the config, stays) and record it."""
    run_id = f"{budget_label(budget)}-{spec.model}-s{spec.seed}-{spec.run_id.rsplit('-', 1)[1]}"
    cfg = spec.config.model_copy(update={"name": run_id, "output": str(Path(spec.config.output).with_name(run_id))})
    return dataclasses.replace(spec, run_id=run_id, config=cfg, budget_flops=budget)


def plan_isoflop(sweep: SweepConfig, source: str = "sweep config") -> list[IsoFlopRun]:
    """Every (budget, model, seed) run of an IsoFLOP sweep; SweepError naming the field otherwise."""
    spec = sweep.isoflop
    if spec is None:
        raise SweepError(f"{source}: isoflop: missing (tokens.policy is isoflop)")
    try:
        corpus = Corpus(sweep.corpus if is_url(sweep.corpus) else Path(sweep.corpus).expanduser().resolve())
    except DataError as exc:
        raise SweepError(f"{source}: corpus: {exc}") from None
    available = corpus.manifest.scales
    unknown = [s for s in sweep.scales if s not in available]
    if unknown:
        raise SweepError(f"{source}: scales: {', '.join(map(repr, unknown))} not in the corpus's manifest.json, "
                         f"which has {', '.join(available) or 'none'}")
    scales = sorted(((s, corpus.scale_tokens(s)) for s in (sweep.scales or available)), key=lambda s: s[1])
    if not scales:
        raise SweepError(f"{source}: corpus: its manifest.json has no scales")
    models = size_models(sweep, corpus, scales[0][0], source)
    runs: list[IsoFlopRun] = []
    for budget in spec.budgets:
        for model in _budget_models(models, budget, spec, source):
            steps = model.steps_for(budget)
            scale = pick_scale(scales, model, steps, spec, budget, source)
            narrowed = _narrowed(sweep, model.entry, scale, steps * model.step_tokens, sweep.seeds)
            for run in plan_sweep(narrowed, source):
                runs.append(IsoFlopRun(_relabel(run, budget), budget, prior_optimum(spec, budget),
                                       model.flops_per_token))
    return runs
