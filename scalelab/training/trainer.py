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
import torch.nn.functional as F

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
from scalelab.training.metrics import CurveLog, write_progress, write_summary
from scalelab.training.model import GPT, lm_loss
from scalelab.training.model_sizes import count_params
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


def evaluate(engine, windows: ValidationWindows, batch_size: int, device: torch.device) -> Validation:
    """Loss over the fixed validation windows, all ranks together, per token and per byte."""
    engine.eval()
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for x, y, real in windows.batches(batch_size):
            logits = engine(x.to(device))
            nats = F.cross_entropy(logits.float().transpose(1, 2), y.to(device), reduction="none")
            total_nats += nats[:real].double().sum()
    engine.train()
    total_nats = float(all_reduce_sum(total_nats))
    return Validation(loss=total_nats / windows.tokens, bpb=bits_per_byte(total_nats, windows.bytes))


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
    import deepspeed

    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    dist = init_distributed(device)
    rank, world, device = dist.rank, dist.world_size, dist.device
    run_dir = Path(cfg.output)
    if not resume and checkpoint.latest_tag(run_dir) is not None:
        raise TrainError(f"{run_dir}: holds checkpoints of an earlier run; resume it or choose another output")

    corpus = Corpus(cfg.data.corpus)
    seq_len = cfg.data.seq_len
    model_cfg = cfg.model.build(corpus.vocab_size, seq_len)
    if seq_len > model_cfg.context:
        raise TrainError(f"data.seq_len {seq_len} is longer than the model's context {model_cfg.context}")
    loader = TrainBatches(ScaleTokens(corpus, cfg.data.scale), seq_len, cfg.batch.micro_batch_size,
                          cfg.batch.grad_accum, rank, world, cfg.seed)
    val_windows = ValidationWindows(corpus, seq_len, cfg.eval.tokens, rank, world)
    steps = total_steps(cfg, loader.num_windows, loader.windows_per_step)  # the cap, with early stopping
    tokens_per_step = loader.windows_per_step * seq_len
    eval_every = eval_interval(cfg, loader.num_windows / loader.windows_per_step)
    stopper = None
    if cfg.train.early_stop is not None:
        stopper = EarlyStopper(cfg.train.early_stop, warmup_steps(cfg.schedule, steps, tokens_per_step), eval_every,
                               cfg.schedule.min_lr_ratio)
    schedule = stopper.lr_factor if stopper else lr_multiplier(cfg.schedule, steps, tokens_per_step)

    on_gpu = device.type == "cuda"
    ds_config = resolve_deepspeed_config(cfg, world, on_gpu, on_gpu and torch.cuda.is_bf16_supported())
    stage = zero_stage(ds_config)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = GPT(model_cfg)
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, model_parameters=param_groups(model, cfg.optimizer.weight_decay), config=ds_config,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))
    manual_grad_norm = stage == 0 and not (engine.bfloat16_enabled() or engine.fp16_enabled())

    step, best, wall_before = 0, None, 0.0
    curves = CurveLog(run_dir, cfg.name)
    if resume:
        state = checkpoint.load_latest(engine, run_dir, rank)
        if state is not None:
            step, wall_before = state["step"], state["wall_s"]
            if state.get("best_val_loss") is not None:
                best = Validation(state["best_val_loss"], state.get("best_val_bpb"))
            loader.load_state_dict(state["loader"])
            if stopper and state.get("early_stop"):
                stopper.load_state_dict(state["early_stop"])
            if rank == 0:
                print(f"[scalelab] resumed {cfg.name} at step {step} ({loader.consumed} windows)", flush=True)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        curves.resume_at(step)

    params = count_params(model_cfg)
    flops_tok = flops_per_token(model_cfg, seq_len)
    peak = peak_flops(torch.cuda.get_device_name(device)) if on_gpu else None
    eval_batch = cfg.eval.micro_batch_size or cfg.batch.micro_batch_size
    t_start, train_time, timed_tokens = time.perf_counter(), 0.0, 0
    val = None

    def client_state() -> dict[str, Any]:
        return {"step": step, "loader": loader.state_dict(), "wall_s": wall_before + time.perf_counter() - t_start,
                "best_val_loss": best.loss if best else None, "best_val_bpb": best.bpb if best else None,
                "early_stop": stopper.state_dict() if stopper else None}

    def finished() -> bool:
        return step >= steps or (stopper is not None and stopper.stopped)

    while not finished():
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this step uses; the scheduler moves it at the step
        loss_sum = torch.zeros((), device=device)
        grad_norm = None
        for x, y in loader.next_step():
            loss = lm_loss(engine(x.to(device)), y.to(device))
            engine.backward(loss)
            if manual_grad_norm and engine.is_gradient_accumulation_boundary():
                grad_norm = grad_norm_fp32(engine.module)
            engine.step()
            loss_sum += loss.detach().float()
        step += 1
        train_loss = float(all_reduce_mean(loss_sum / cfg.batch.grad_accum))
        if grad_norm is None:
            reported = engine.get_global_grad_norm()
            grad_norm = float(reported) if reported is not None else None
        seconds = time.perf_counter() - t0
        if step > 1:  # the first step pays for warm-up (allocations, kernel choice)
            train_time, timed_tokens = train_time + seconds, timed_tokens + tokens_per_step
        tps = tokens_per_step / seconds
        if rank == 0:
            curves.append(step=step, tokens_seen=loader.consumed * seq_len, epochs=loader.epochs,
                          train_loss=train_loss, lr=lr, grad_norm=grad_norm, tokens_per_s=tps,
                          mfu=mfu(flops_tok, tps, world, peak))
        val = None
        if step % eval_every == 0 or step == steps:
            val = evaluate(engine, val_windows, eval_batch, device)
            best = val if best is None or val.loss < best.loss else best
            if stopper:
                stopper.observe(step, val.loss)
            if rank == 0:
                curves.set_validation(step, val.loss, val.bpb)
        if rank == 0 and (step % cfg.log_every_steps == 0 or finished() or val is not None):
            _log_step(cfg, run_dir, curves, step, steps, train_loss, lr, grad_norm, tps, loader, val, stopper)
        if step % cfg.checkpoint.every_steps == 0 or finished():
            if rank == 0:
                curves.write()
            checkpoint.save(engine, run_dir, step, client_state(), rank, cfg.checkpoint.keep)
        maybe_fail(step, rank, cfg.name)

    if rank == 0:
        curves.write()
    if val is None:  # resumed after the final step: the run was already complete
        val = evaluate(engine, val_windows, eval_batch, device)
    exported = None
    if cfg.checkpoint.export:
        exported = checkpoint.export_fp32(engine, run_dir, model_cfg.to_dict(), stage, rank)
    outcome = Outcome(final=val, best=best or val, steps=step, steps_cap=steps, stopper=stopper,
                      val_curve=[(r["step"], r["val_loss"]) for r in curves.rows if r["val_loss"] is not None])
    summary = _summary(cfg, corpus, model_cfg, params, flops_tok, loader, outcome, val_windows, curves,
                       wall_before + time.perf_counter() - t_start,
                       timed_tokens / train_time if train_time else None, world, stage, engine, started_at, exported)
    if rank == 0:
        write_summary(run_dir, summary)
    return summary


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


def _log_step(cfg, run_dir, curves, step, steps, train_loss, lr, grad_norm, tps, loader, val, stopper) -> None:
    """progress.json for live sweep tables, and one line on stdout."""
    vals = curves.val_losses()
    write_progress(run_dir, {"step": step, "steps": steps, "train_loss": train_loss,
                             "val_loss": vals[-1] if vals else None,
                             "tokens_seen": loader.consumed * loader.seq_len, "epochs": loader.epochs,
                             "tokens_per_s": tps})
    shown = f" | val {val.loss:.4f}" + (f" ({val.bpb:.4f} bpb)" if val.bpb is not None else "") if val else ""
    gn = f"{grad_norm:.3f}" if grad_norm is not None else "-"
    phase = f" | {stopper.state.phase}" if stopper else ""
    print(f"[scalelab] {cfg.name} step {step}/{steps} | loss {train_loss:.4f}{shown} | lr {lr:.2e} | "
          f"grad norm {gn} | {tps:,.0f} tok/s | epoch {loader.epochs:.2f}{phase}", flush=True)


def _summary(cfg, corpus, model_cfg, params, flops_tok, loader, outcome: Outcome, val_windows: ValidationWindows,
             curves, wall_s, tokens_per_s, world, stage, engine, started_at, exported) -> dict[str, Any]:
    from scalelab.core.provenance import provenance

    tokens_seen = loader.consumed * loader.seq_len
    last = [r["train_loss"] for r in curves.rows[-10:]]
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
        "seq_len": loader.seq_len,
        "global_batch_windows": loader.windows_per_step,
        "model": cfg.model.name,
        "n_layer": model_cfg.n_layer, "n_head": model_cfg.n_head, "d_model": model_cfg.d_model,
        "vocab_size": model_cfg.vocab_size,
        "params": params["total"],
        "params_non_embedding": params["non_embedding"],
        "flops_per_token": flops_tok,
        "flops": flops_tok * tokens_seen,
        "final_val_loss": outcome.final.loss,
        "best_val_loss": outcome.best.loss,
        "final_val_bpb": outcome.final.bpb,
        "best_val_bpb": outcome.best.bpb,
        "val_bytes": val_windows.bytes,
        "bpb_exact": val_windows.counter.exact,  # false: bytes estimated from the file's bytes per token
        "converged": converged(outcome.val_curve, outcome.steps),
        "last_window_improvement": last_window_improvement(outcome.val_curve, outcome.steps),
        "final_train_loss": sum(last) / len(last) if last else None,  # mean of the last 10 steps
        "val_tokens": val_windows.tokens,  # the same fixed prefix for every run of this corpus and seq_len
        "wall_time_s": wall_s,
        "tokens_per_s": tokens_per_s,
        "world_size": world,
        "zero_stage": stage,
        "precision": "bf16" if engine.bfloat16_enabled() else ("fp16" if engine.fp16_enabled() else "fp32"),
        "seed": cfg.seed,
        "config_hash": cfg.experiment_hash(),
        "manifest_sha256": corpus.manifest_sha256,
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported": str(exported) if exported else None,
        **provenance(),
    }
