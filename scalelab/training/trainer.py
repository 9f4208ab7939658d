"""One training run under DeepSpeed: `train(cfg)` on every rank of an existing or new process group.

The loop, per optimizer step: this rank's micro-batches forward and backward through the engine
(DeepSpeed reduces gradients and steps the optimizer and the lr schedule at the accumulation
boundary), the loss averaged over ranks, metrics appended; every `eval.every_steps` the validation
loss; every `checkpoint.every_steps` a checkpoint. At the end: evaluation, checkpoint, fp32 export
and `summary.json`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from scalelab.core.provenance import provenance
from scalelab.training import checkpoint
from scalelab.training.bits_per_byte import bits_per_byte
from scalelab.training.config import TrainConfig
from scalelab.training.convergence import converged, last_window_improvement
from scalelab.training.data import Corpus, ScaleTokens, TrainBatches, ValidationWindows
from scalelab.training.deepspeed_config import resolve_deepspeed_config, zero_stage
from scalelab.training.distributed import all_reduce_mean, all_reduce_sum, init_distributed
from scalelab.training.early_stop import EarlyStopper
from scalelab.training.faults import maybe_fail
from scalelab.training.flops import flops_per_token, mfu, peak_flops
from scalelab.training.families import ModelShape, build_model, context_limit, saved_header
from scalelab.training.metrics import CurveLog, write_progress, write_summary
from scalelab.training.model_sizes import count_params
from scalelab.training.objectives import CausalLM, Objective, Scored, objective_for
from scalelab.training.schedule import lr_multiplier, warmup_steps


class TrainError(ValueError):
    """The run can't start as configured (said before any training step)."""


def total_steps(cfg: TrainConfig, num_windows: int, windows_per_step: int) -> int:
    """Optimizer steps for the run's length (steps, tokens, or epochs over the scale's windows)."""
    length = cfg.train
    if length.steps is not None:
        return length.steps
    if length.tokens is not None:
        return math.ceil(length.tokens / (windows_per_step * cfg.data.seq_len))
    return max(1, math.ceil(length.epochs * num_windows / windows_per_step))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on the matmul weights only: not on biases, LayerNorms or embeddings."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and not name.startswith(("wte.", "wpe.")) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass(frozen=True)
class Validation:
    loss: float            # nats per token
    bpb: Optional[float]   # bits per UTF-8 byte of the text the targets stand for


def evaluate(engine, windows: ValidationWindows, batch_size: int, device: torch.device,
             objective: Objective = CausalLM(), scored: Optional[Scored] = None) -> Validation:
    """Loss over the fixed validation windows, all ranks together, per predicted token and per byte
    (every next token, or BERT's selected tokens: see objectives.py)."""
    scored = scored or objective.scored(windows)
    engine.eval()
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for ids, x, y, real in windows.indexed_batches(batch_size):
            total_nats += objective.eval_nats(engine, ids, x, y, real, device)
    engine.train()
    total_nats = float(all_reduce_sum(total_nats))
    return Validation(loss=total_nats / scored.tokens, bpb=bits_per_byte(total_nats, scored.bytes))


def eval_interval(cfg: TrainConfig, steps_per_epoch: float) -> int:
    """Steps between evaluations: every_steps, or every `every_epochs` passes when that is sooner."""
    if cfg.eval.every_epochs is None:
        return cfg.eval.every_steps
    return max(1, min(cfg.eval.every_steps, round(cfg.eval.every_epochs * steps_per_epoch)))


def grad_norm_fp32(model: torch.nn.Module) -> float:
    """The global gradient norm where DeepSpeed doesn't report one (ZeRO-0 in fp32)."""
    squares = [p.grad.detach().float().pow(2).sum() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def train(cfg: TrainConfig, resume: bool = False, device: Optional[torch.device] = None) -> dict[str, Any]:
    """Run (or resume) one training run; every rank calls this. Rank 0 holds the curve, so its summary
    (the one written to summary.json) is the complete one."""
    started_at = _now()
    run = _set_up(cfg, resume, device)
    progress = _restore(run, resume)
    t_start = time.perf_counter()
    while not _finished(run, progress):
        _train_one_step(run, progress, t_start)
    return _finish(run, progress, t_start, started_at)


@dataclass
class Run:
    """What one rank trains with, set up once: data, model engine, schedule and stopping rule."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    run_dir: Path
    corpus: Corpus
    model_cfg: ModelShape
    objective: Objective
    loader: TrainBatches
    val_windows: ValidationWindows
    val_scored: Scored             # what each validation loss is averaged over
    steps: int                     # the cap, with early stopping
    tokens_per_step: int
    eval_every: int
    eval_batch: int
    stopper: Optional[EarlyStopper]
    engine: Any
    optimizer: Any
    zero_stage: int
    manual_grad_norm: bool         # DeepSpeed reports no gradient norm for ZeRO-0 in fp32
    curves: CurveLog
    params: dict[str, int]
    flops_per_token: int
    peak_flops: Optional[float]


@dataclass
class Progress:
    """Where the run is: what a checkpoint saves, plus this attempt's timing."""

    step: int = 0
    best: Optional[Validation] = None
    wall_before: float = 0.0       # seconds spent by earlier attempts
    train_time: float = 0.0        # seconds of timed steps (not the first, which pays for warm-up)
    timed_tokens: int = 0
    val: Optional[Validation] = None  # the last step's evaluation, if it had one


def _set_up(cfg: TrainConfig, resume: bool, device: Optional[torch.device]) -> Run:
    import deepspeed  # heavy (and it logs on import): only the processes that train load it

    dist = init_distributed(device)
    run_dir = Path(cfg.output)
    if not resume and checkpoint.latest_tag(run_dir) is not None:
        raise TrainError(f"{run_dir}: holds checkpoints of an earlier run; resume it or choose another output")
    corpus = Corpus(cfg.data.corpus)
    seq_len = cfg.data.seq_len
    model_cfg = cfg.model.build(corpus.vocab_size, seq_len)
    context = context_limit(model_cfg)
    if context is not None and seq_len > context:
        raise TrainError(f"data.seq_len {seq_len} is longer than the model's context {context}")
    loader = TrainBatches(ScaleTokens(corpus, cfg.data.scale), seq_len, cfg.batch.micro_batch_size,
                          cfg.batch.grad_accum, dist.rank, dist.world_size, cfg.seed)
    val_windows = ValidationWindows(corpus, seq_len, cfg.eval.tokens, dist.rank, dist.world_size)
    objective = objective_for(model_cfg, cfg.seed, corpus.eod_id)
    steps = total_steps(cfg, loader.num_windows, loader.windows_per_step)
    tokens_per_step = loader.windows_per_step * seq_len
    eval_every = eval_interval(cfg, loader.num_windows / loader.windows_per_step)
    stopper = None
    if cfg.train.early_stop is not None:
        stopper = EarlyStopper(cfg.train.early_stop, warmup_steps(cfg.schedule, steps, tokens_per_step), eval_every,
                               cfg.schedule.min_lr_ratio)
    schedule = stopper.lr_factor if stopper else lr_multiplier(cfg.schedule, steps, tokens_per_step)

    on_gpu = dist.device.type == "cuda"
    ds_config = resolve_deepspeed_config(cfg, dist.world_size, on_gpu, on_gpu and torch.cuda.is_bf16_supported())
    stage = zero_stage(ds_config)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = build_model(model_cfg)
    engine, optimizer, _, _ = deepspeed.initialize(
        model=model, model_parameters=param_groups(model, cfg.optimizer.weight_decay), config=ds_config,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))
    return Run(cfg=cfg, rank=dist.rank, world=dist.world_size, device=dist.device, run_dir=run_dir, corpus=corpus,
               model_cfg=model_cfg, objective=objective, loader=loader, val_windows=val_windows,
               val_scored=objective.scored(val_windows), steps=steps,
               tokens_per_step=tokens_per_step, eval_every=eval_every,
               eval_batch=cfg.eval.micro_batch_size or cfg.batch.micro_batch_size, stopper=stopper, engine=engine,
               optimizer=optimizer, zero_stage=stage,
               manual_grad_norm=stage == 0 and not (engine.bfloat16_enabled() or engine.fp16_enabled()),
               curves=CurveLog(run_dir, cfg.name), params=count_params(model_cfg),
               flops_per_token=flops_per_token(model_cfg, seq_len),
               peak_flops=peak_flops(torch.cuda.get_device_name(dist.device)) if on_gpu else None)


def _restore(run: Run, resume: bool) -> Progress:
    """The latest checkpoint's state (on --resume), and the curve cut back to its step."""
    progress = Progress()
    state = checkpoint.load_latest(run.engine, run.run_dir, run.rank) if resume else None
    if state is not None:
        progress.step, progress.wall_before = state["step"], state["wall_s"]
        if state.get("best_val_loss") is not None:
            progress.best = Validation(state["best_val_loss"], state.get("best_val_bpb"))
        run.loader.load_state_dict(state["loader"])
        if run.stopper and state.get("early_stop"):
            run.stopper.load_state_dict(state["early_stop"])
        if run.rank == 0:
            print(f"[scalelab] resumed {run.cfg.name} at step {progress.step} ({run.loader.consumed} windows)",
                  flush=True)
    if run.rank == 0:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        run.curves.resume_at(progress.step)
    return progress


def _finished(run: Run, progress: Progress) -> bool:
    return progress.step >= run.steps or (run.stopper is not None and run.stopper.stopped)


@dataclass(frozen=True)
class StepMetrics:
    train_loss: float              # mean over the step's micro-batches and ranks
    lr: float                      # the rate this step used
    grad_norm: Optional[float]
    tokens_per_s: float


def _train_one_step(run: Run, progress: Progress, t_start: float) -> None:
    """One optimizer step, then what falls on it: metrics, evaluation, log line, checkpoint."""
    t0 = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]  # the rate this step uses; the scheduler moves it at the step
    train_loss, grad_norm = _optimizer_step(run)
    progress.step += 1
    seconds = time.perf_counter() - t0
    if progress.step > 1:  # the first step pays for warm-up (allocations, kernel choice)
        progress.train_time, progress.timed_tokens = progress.train_time + seconds, progress.timed_tokens + run.tokens_per_step
    metrics = StepMetrics(train_loss, lr, grad_norm, run.tokens_per_step / seconds)
    if run.rank == 0:
        run.curves.append(step=progress.step, tokens_seen=run.loader.consumed * run.loader.seq_len,
                          epochs=run.loader.epochs, train_loss=train_loss, lr=lr, grad_norm=grad_norm,
                          tokens_per_s=metrics.tokens_per_s,
                          mfu=mfu(run.flops_per_token, metrics.tokens_per_s, run.world, run.peak_flops))
    progress.val = _evaluate_if_due(run, progress)
    cfg = run.cfg
    if run.rank == 0 and (progress.step % cfg.log_every_steps == 0 or _finished(run, progress) or progress.val is not None):
        _log_step(run, progress, metrics)
    if progress.step % cfg.checkpoint.every_steps == 0 or _finished(run, progress):
        if run.rank == 0:
            run.curves.write()
        checkpoint.save(run.engine, run.run_dir, progress.step, _client_state(run, progress, t_start), run.rank,
                        cfg.checkpoint.keep)
    maybe_fail(progress.step, run.rank, cfg.name)


def _optimizer_step(run: Run) -> tuple[float, Optional[float]]:
    """This rank's micro-batches forward and backward; DeepSpeed steps at the accumulation boundary."""
    loss_sum = torch.zeros((), device=run.device)
    grad_norm = None
    positions = run.loader.step_positions()
    for (x, y), where in zip(run.loader.next_step(), positions):
        loss = run.objective.train_loss(run.engine, x, y, where, run.device)
        run.engine.backward(loss)
        if run.manual_grad_norm and run.engine.is_gradient_accumulation_boundary():
            grad_norm = grad_norm_fp32(run.engine.module)
        run.engine.step()
        loss_sum += loss.detach().float()
    train_loss = float(all_reduce_mean(loss_sum / run.cfg.batch.grad_accum))
    if grad_norm is None:
        reported = run.engine.get_global_grad_norm()
        grad_norm = float(reported) if reported is not None else None
    return train_loss, grad_norm


def _evaluate_if_due(run: Run, progress: Progress) -> Optional[Validation]:
    if progress.step % run.eval_every != 0 and progress.step != run.steps:
        return None
    val = evaluate(run.engine, run.val_windows, run.eval_batch, run.device, run.objective, run.val_scored)
    progress.best = val if progress.best is None or val.loss < progress.best.loss else progress.best
    if run.stopper:
        run.stopper.observe(progress.step, val.loss)
        if run.stopper.improved and run.stopper.spec.rewind:
            checkpoint.save_best(run.engine, run.run_dir)
        if run.stopper.rewind_due:
            checkpoint.rewind_to_best(run.engine, run.run_dir)
    if run.rank == 0:
        run.curves.set_validation(progress.step, val.loss, val.bpb)
    return val


def _client_state(run: Run, progress: Progress, t_start: float) -> dict[str, Any]:
    """What a checkpoint carries besides the engine: enough to continue the same run exactly."""
    best = progress.best
    return {"step": progress.step, "loader": run.loader.state_dict(),
            "wall_s": progress.wall_before + time.perf_counter() - t_start,
            "best_val_loss": best.loss if best else None, "best_val_bpb": best.bpb if best else None,
            "early_stop": run.stopper.state_dict() if run.stopper else None}


def _finish(run: Run, progress: Progress, t_start: float, started_at: str) -> dict[str, Any]:
    """The last curve rows, a final evaluation if the last step had none, the export, summary.json."""
    if run.rank == 0:
        run.curves.write()
        checkpoint.drop_best(run.run_dir)
    if progress.val is None:  # resumed after the final step: the run was already complete
        progress.val = evaluate(run.engine, run.val_windows, run.eval_batch, run.device, run.objective,
                                run.val_scored)
    exported = None
    if run.cfg.checkpoint.export:
        exported = checkpoint.export_fp32(run.engine, run.run_dir, saved_header(run.model_cfg), run.zero_stage,
                                          run.rank)
    outcome = Outcome(final=progress.val, best=progress.best or progress.val, steps=progress.step,
                      steps_cap=run.steps, stopper=run.stopper,
                      val_curve=[(r["step"], r["val_loss"]) for r in run.curves.rows if r["val_loss"] is not None])
    timing = Timing(started_at=started_at, wall_s=progress.wall_before + time.perf_counter() - t_start,
                    tokens_per_s=progress.timed_tokens / progress.train_time if progress.train_time else None)
    summary = _summary(run, outcome, timing, exported)
    if run.rank == 0:
        write_summary(run.run_dir, summary)
    return summary


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Outcome:
    """How the run ended: its last and best validation, its length, and why it stopped."""

    final: Validation
    best: Validation
    steps: int
    steps_cap: int
    stopper: Optional[EarlyStopper]
    val_curve: list[tuple[int, float]]

    @property
    def stopped_by(self) -> str:
        if self.stopper is None:
            return "length"
        return "early_stop" if self.stopper.stopped else "cap"


@dataclass(frozen=True)
class Timing:
    started_at: str
    wall_s: float                  # all attempts together
    tokens_per_s: Optional[float]  # over the timed steps of this attempt


def _log_step(run: Run, progress: Progress, m: StepMetrics) -> None:
    """progress.json for live sweep tables, and one line on stdout."""
    loader, val, stopper = run.loader, progress.val, run.stopper
    vals = run.curves.val_losses()
    write_progress(run.run_dir, {"step": progress.step, "steps": run.steps, "train_loss": m.train_loss,
                                 "val_loss": vals[-1] if vals else None,
                                 "tokens_seen": loader.consumed * loader.seq_len, "epochs": loader.epochs,
                                 "tokens_per_s": m.tokens_per_s})
    shown = f" | val {val.loss:.4f}" + (f" ({val.bpb:.4f} bpb)" if val.bpb is not None else "") if val else ""
    gn = f"{m.grad_norm:.3f}" if m.grad_norm is not None else "-"
    phase = f" | {stopper.state.phase}" if stopper else ""
    print(f"[scalelab] {run.cfg.name} step {progress.step}/{run.steps} | loss {m.train_loss:.4f}{shown} | "
          f"lr {m.lr:.2e} | grad norm {gn} | {m.tokens_per_s:,.0f} tok/s | epoch {loader.epochs:.2f}{phase}", flush=True)


def _summary(run: Run, outcome: Outcome, timing: Timing, exported: Optional[Path]) -> dict[str, Any]:
    """summary.json: one row of the sweep's runs.parquet."""
    cfg, corpus, loader, model_cfg, val_windows, engine = \
        run.cfg, run.corpus, run.loader, run.model_cfg, run.val_windows, run.engine
    tokens_seen = loader.consumed * loader.seq_len
    last = [r["train_loss"] for r in run.curves.rows[-10:]]
    return {
        "run_id": cfg.name,
        "status": "complete",
        "corpus": str(corpus.folder),
        "scale": cfg.data.scale,
        "unique_tokens": corpus.scale_tokens(cfg.data.scale),  # D: the scale's distinct tokens
        "tokens_seen": tokens_seen,
        "epochs": loader.epochs,
        "steps": outcome.steps,
        "steps_cap": outcome.steps_cap,
        "stopped_by": outcome.stopped_by,  # length (fixed), early_stop (plateau), cap (early stop never fired)
        "cooldown_start": outcome.stopper.state.cooldown_start if outcome.stopper else None,
        "rewound_to": outcome.stopper.state.rewound_to if outcome.stopper else None,  # the cooldown's start weights
        "seq_len": loader.seq_len,
        "global_batch_windows": loader.windows_per_step,
        "model": cfg.model.name,
        "family": model_cfg.family,
        "objective": run.objective.name,  # causal_lm, or masked_lm: losses over BERT's selected tokens
        "n_layer": model_cfg.n_layer, "n_head": getattr(model_cfg, "n_head", None), "d_model": model_cfg.d_model,
        "vocab_size": model_cfg.vocab_size,
        "params": run.params["total"],
        "params_non_embedding": run.params["non_embedding"],
        "flops_per_token": run.flops_per_token,
        "flops": run.flops_per_token * tokens_seen,
        "final_val_loss": outcome.final.loss,
        "best_val_loss": outcome.best.loss,
        "final_val_bpb": outcome.final.bpb,
        "best_val_bpb": outcome.best.bpb,
        "val_bytes": run.val_scored.bytes,
        "bpb_exact": val_windows.counter.exact,  # false: bytes estimated from the file's bytes per token
        "converged": converged(outcome.val_curve, outcome.steps),
        "last_window_improvement": last_window_improvement(outcome.val_curve, outcome.steps),
        "final_train_loss": sum(last) / len(last) if last else None,  # mean of the last 10 steps
        "val_tokens": run.val_scored.tokens,  # the same for every run of this corpus, seq_len and objective
        "wall_time_s": timing.wall_s,
        "tokens_per_s": timing.tokens_per_s,
        "world_size": run.world,
        "zero_stage": run.zero_stage,
        "precision": "bf16" if engine.bfloat16_enabled() else ("fp16" if engine.fp16_enabled() else "fp32"),
        "seed": cfg.seed,
        "config_hash": cfg.experiment_hash(),
        "manifest_sha256": corpus.manifest_sha256,
        "started_at": timing.started_at,
        "finished_at": _now(),
        "exported": str(exported) if exported else None,
        **provenance(),
    }
