"""A sweep expanded into runs: one resolved run config per (scale, model, seed), with its id and sizes.

A run's id is readable (`80k-nano-s0-...`) and ends in a hash of everything that determines its
results: the resolved run config, the manifest's sha256 and the number of workers (it sets the
global batch). The same sweep config therefore gives the same ids, and a run folder can only ever
hold one run's checkpoints.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from scalelab.orchestrator.sweep_config import SweepConfig
from scalelab.core.config import ConfigError, read_yaml, validate
from scalelab.core.storage import Location, is_url
from scalelab.training.config import TrainConfig
from scalelab.training.data import Corpus, DataError
from scalelab.training.flops import peak_flops
from scalelab.training.model_sizes import count_params
from scalelab.training.trainer import total_steps


class SweepError(ValueError):
    """The sweep can't start as configured (said before any run starts)."""


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    scale: str
    model: str
    seed: int
    config: TrainConfig   # resolved: absolute paths, name = run_id, output = the run folder
    unique_tokens: int    # D: the scale's tokens
    params: int           # N, all parameters
    params_non_embedding: int
    steps: int
    tokens: int           # tokens the run trains on
    epochs: float
    flops_6nd: float      # 6 × N (all) × tokens
    gpu_hours: Optional[float]
    budget_flops: Optional[float] = None  # C of an IsoFLOP run (orchestrator/isoflop_plan.py)
    results_root: Optional[str] = None    # an object-store output's OUTPUT/runs; None: results stay in run_dir

    @property
    def run_dir(self) -> Path:
        """Where the run trains (checkpoints, memory-mapped data)."""
        return Path(self.config.output)

    @property
    def home(self) -> Location:
        """Where the run's results are read from: its run folder, or OUTPUT/runs/<run_id> in the object store."""
        if self.results_root is None:
            return Location.of(self.run_dir)
        return Location.of(self.results_root) / self.run_id


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _length(sweep: SweepConfig, params: int) -> dict[str, Any]:
    p = sweep.tokens
    if p.policy == "early_stop":
        return {"epochs": p.value, "early_stop": p.early_stop.model_dump()}
    if p.policy == "epochs":
        return {"epochs": p.value}
    if p.policy == "fixed":
        return {"tokens": int(p.value)}
    return {"tokens": max(1, int(round(p.value * params)))}


def plan_sweep(sweep: SweepConfig, source: str = "sweep config") -> list[RunSpec]:
    """Expand the sweep into runs; raise SweepError naming the field for anything that can't run."""
    if "train" in sweep.train:
        # Each run's length comes from `tokens:`; a train.train here would be silently replaced.
        raise SweepError(f"{source}: train.train: a sweep sets each run's length from `tokens:` (policy, value); "
                         "remove train.train and set tokens instead")
    if sweep.tokens.policy == "isoflop":
        # Imported here: the IsoFLOP planner builds its runs with this function, so it imports this module.
        from scalelab.orchestrator.isoflop_plan import plan_isoflop

        return [run.spec for run in plan_isoflop(sweep, source)]
    corpus_dir = sweep.corpus if is_url(sweep.corpus) else Path(sweep.corpus).expanduser().resolve()
    try:
        corpus = Corpus(corpus_dir)
    except DataError as exc:
        raise SweepError(f"{source}: corpus: {exc}") from None
    available = list(corpus.manifest.scales)
    scales = sweep.scales or available
    unknown = [s for s in scales if s not in available]
    if unknown:
        raise SweepError(f"{source}: scales: {', '.join(map(repr, unknown))} not in {corpus_dir}/manifest.json, "
                         f"which has {', '.join(available) or 'none'}")
    try:
        base = read_yaml(sweep.base) if sweep.base else {}
    except ConfigError as exc:
        raise SweepError(f"{source}: base: {exc}") from None
    common = deep_merge(base, sweep.train)
    storage = sweep.storage_dir().expanduser().resolve()
    results = sweep.results_dir()
    workers = sweep.resources.workers
    peak = peak_flops(sweep.resources.gpu_type) if sweep.resources.use_gpu else None

    runs: list[RunSpec] = []
    for scale in scales:
        for entry in sweep.model_entries():
            for seed in sweep.seeds:
                data = copy.deepcopy(common)
                data["data"] = {**data.get("data", {}), "corpus": str(corpus_dir), "scale": scale}
                # Shape from the sweep's model entry; the base keeps dropout, bias, padding.
                kept = {k: v for k, v in data.get("model", {}).items() if k in ("dropout", "bias", "pad_vocab_to")}
                data["model"] = {**kept, **entry.as_model_spec()}
                data["seed"] = seed
                if sweep.deepspeed:
                    data["deepspeed"] = sweep.deepspeed
                where = f"{source} (run {scale} × {entry.name} × seed {seed})"
                try:
                    probe = validate(TrainConfig, {**data, "train": {"steps": 1}}, where)
                    params = count_params(probe.model.build(corpus.vocab_size, probe.data.seq_len))
                    data["train"] = _length(sweep, params["total"])
                    if sweep.learning_rate is not None:
                        lr = sweep.learning_rate.lr_for(probe.model.resolved("d_model"))
                        data["optimizer"] = {**data.get("optimizer", {}), "lr": lr}
                    cfg = validate(TrainConfig, data, where).resolve_paths()
                except ConfigError as exc:
                    raise SweepError(str(exc)) from None
                key = f"{cfg.experiment_hash()}|{corpus.manifest_sha256}|{workers}"
                run_id = f"{scale}-{entry.name}-s{seed}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
                cfg = cfg.model_copy(update={"name": run_id, "output": str(storage / run_id)})

                d = corpus.scale_tokens(scale)
                num_windows = (d - 1) // cfg.data.seq_len
                per_step = cfg.batch.micro_batch_size * cfg.batch.grad_accum * workers
                steps = total_steps(cfg, num_windows, per_step)
                tokens = steps * per_step * cfg.data.seq_len
                flops = 6.0 * params["total"] * tokens
                runs.append(RunSpec(
                    run_id=run_id, scale=scale, model=entry.name, seed=seed, config=cfg, unique_tokens=d,
                    params=params["total"], params_non_embedding=params["non_embedding"], steps=steps,
                    tokens=tokens, epochs=steps * per_step / max(1, num_windows), flops_6nd=flops,
                    gpu_hours=flops / (peak * sweep.assumed_mfu) / 3600 if peak else None,
                    results_root=results.url if results else None))
    return runs
