"""Benchmark the training step: DeepSpeed ZeRO-2 (or 0/1/3) against a plain PyTorch loop, same model and data.

Both loops run in this one process (a world of one), on the same batches from the sample corpus's
shards, with the same AdamW, gradient clipping and lr schedule; the figure is tokens/s after a
warm-up, and the ratio plain / DeepSpeed (target: DeepSpeed overhead <= 1.15x on CPU). On a GPU it
runs in bf16 with NCCL and also prints MFU (FLOPs per token as training/flops.py counts them, over
the device's dense bf16 peak; target for GPT-124M on an H100/H200: >= 45%).

    python bench/train.py [--corpus out/sample] [--preset micro] [--family gpt] [--steps 30]
    python bench/train.py --preset gpt2-124m --vocab-size 50257 --seq-len 1024 --micro-batch 16 --deepspeed zero3 --compile
    python bench/train.py --preset gpt2-124m --vocab-size 50257 --seq-len 1024 --micro-batch 16 --deepspeed zero3 --dry-run

--dry-run resolves everything as it would on a GPU (bf16, NCCL, DeepSpeed's Adam) and builds the
model on the meta device, then prints the plan without training: the GPU path's configuration
checked on a machine without one.
"""

from __future__ import annotations

import os
import sys

# bench/tokenize.py would shadow the standard library's tokenize module: keep bench/ off the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from scalelab.training.config import TrainConfig  # noqa: E402
from scalelab.training.data import Corpus, ScaleTokens, TrainBatches  # noqa: E402
from scalelab.training.deepspeed_config import resolve_deepspeed_config  # noqa: E402
from scalelab.training.distributed import init_distributed  # noqa: E402
from scalelab.training.families import build_model  # noqa: E402
from scalelab.training.flops import flops_per_token, mfu, peak_flops  # noqa: E402
from scalelab.training.model_sizes import count_params  # noqa: E402
from scalelab.training.objectives import objective_for  # noqa: E402
from scalelab.training.schedule import lr_multiplier  # noqa: E402
from scalelab.training.trainer import param_groups  # noqa: E402


def positioned(cfg: TrainConfig, corpus: Corpus, steps: int) -> list[list[tuple[list[int], torch.Tensor, torch.Tensor]]]:
    """The run's first `steps` steps: per micro-batch its stream positions (BERT's masks) and windows."""
    loader = TrainBatches(ScaleTokens(corpus, cfg.data.scale), cfg.data.seq_len, cfg.batch.micro_batch_size,
                          cfg.batch.grad_accum, 0, 1, cfg.seed)
    out = []
    for _ in range(steps):
        where = loader.step_positions()
        out.append([(p, x, y) for p, (x, y) in zip(where, loader.next_step())])
    return out


def timed(step_fn, data, warmup: int, device) -> list[float]:
    times = []
    for i, micro in enumerate(data):
        t0 = time.perf_counter()
        step_fn(micro)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def deepspeed_loop(cfg, model_cfg, objective, data, device, warmup, total, compile_model: bool):
    import deepspeed

    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    ds = resolve_deepspeed_config(cfg, 1, device.type == "cuda", device.type == "cuda")
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model, cfg.optimizer.weight_decay),
                                      config=ds, lr_scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(
                                          o, lr_multiplier(cfg.schedule, total)))
    if compile_model:
        engine.compile()

    def step(micro):
        for where, x, y in micro:
            loss = objective.train_loss(engine, x, y, where, device)
            engine.backward(loss)
            engine.step()

    return timed(step, data, warmup, device), ds


def plain_loop(cfg, model_cfg, objective, data, device, warmup, total, bf16: bool, compile_model: bool):
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg).to(device)
    forward = torch.compile(model) if compile_model else model
    o = cfg.optimizer
    opt = torch.optim.AdamW(param_groups(model, o.weight_decay), lr=o.lr, betas=o.betas, eps=o.eps,
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_multiplier(cfg.schedule, total))
    accum = len(data[0])

    def step(micro):
        for where, x, y in micro:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = objective.train_loss(forward, x, y, where, device) / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)

    return timed(step, data, warmup, device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=str(REPO / "out" / "sample"))
    p.add_argument("--scale", default="150k")
    p.add_argument("--preset", default="micro")
    p.add_argument("--family", default="gpt", choices=("gpt", "bert", "lstm"))
    p.add_argument("--vocab-size", type=int, default=None, help="Model vocabulary when larger than the corpus's "
                   "(50257: GPT-2's, so gpt2-124m has its 124M parameters; the corpus's ids use the first rows).")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--deepspeed", default="zero2", help="A shipped DeepSpeed JSON by name (zero0 ... zero3-offload) "
                   "or a path.")
    p.add_argument("--compile", action="store_true", help="torch.compile both loops' models (GPUs).")
    p.add_argument("--dry-run", action="store_true", help="Resolve everything as on a GPU and print the plan; "
                   "no training (checks the GPU path's configuration anywhere).")
    args = p.parse_args()

    corpus = Corpus(args.corpus)
    cfg = TrainConfig.model_validate({
        "data": {"corpus": args.corpus, "scale": args.scale, "seq_len": args.seq_len},
        "model": {"family": args.family, "preset": args.preset, "context": max(args.seq_len, 256)},
        "batch": {"micro_batch_size": args.micro_batch, "grad_accum": args.grad_accum},
        "deepspeed": args.deepspeed})
    model_cfg = cfg.model.build(max(corpus.vocab_size, args.vocab_size or 0), args.seq_len)
    fpt = flops_per_token(model_cfg, args.seq_len)
    tokens_per_step = args.micro_batch * args.grad_accum * args.seq_len
    if args.dry_run:
        dry_run(cfg, model_cfg, fpt, tokens_per_step)
        return
    dist = init_distributed()
    device = dist.device
    objective = objective_for(model_cfg, cfg.seed, corpus.eod_id)
    data = positioned(cfg, corpus, args.steps)

    ds_times, ds = deepspeed_loop(cfg, model_cfg, objective, data, device, args.warmup, args.steps, args.compile)
    plain_times = plain_loop(cfg, model_cfg, objective, data, device, args.warmup, args.steps, ds["bf16"]["enabled"],
                             args.compile)

    n = count_params(model_cfg)["total"]
    peak = peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"model {cfg.model.name}: {n / 1e6:.2f}M params, seq_len {args.seq_len}, {tokens_per_step:,} tokens/step, "
          f"precision {'bf16' if ds['bf16']['enabled'] else 'fp32'}, {args.steps - args.warmup} timed steps")
    rates = {}
    for name, times in (("DeepSpeed ZeRO-%d" % ds["zero_optimization"]["stage"], ds_times), ("plain PyTorch", plain_times)):
        rate = tokens_per_step / statistics.median(times)
        rates[name] = rate
        util = mfu(fpt, rate, 1, peak)
        print(f"  {name:18s} {rate:12,.0f} tokens/s  (median step {statistics.median(times) * 1e3:.1f} ms)"
              + (f"  MFU {100 * util:.1f}%" if util is not None else ""))
    ds_rate, plain_rate = rates.values()
    print(f"  overhead: plain / DeepSpeed = {plain_rate / ds_rate:.3f}x (target <= 1.15x)")


def dry_run(cfg: TrainConfig, model_cfg, fpt: float, tokens_per_step: int) -> None:
    """The GPU path's plan, resolved as on one GPU with bf16, and the model built on the meta device."""
    ds = resolve_deepspeed_config(cfg, 1, on_gpu=True, bf16_ok=True)
    with torch.device("meta"):
        built = sum(p.numel() for p in build_model(model_cfg).parameters())
    counted = count_params(model_cfg)["total"]
    if built != counted:
        raise SystemExit(f"parameter count {counted} by formula, {built} built: the FLOPs would be wrong")
    zero = ds["zero_optimization"]["stage"]
    adam = "torch AdamW" if ds["optimizer"]["params"]["torch_adam"] else "DeepSpeed Adam"
    print(f"dry run as on one GPU: model {cfg.model.name} ({cfg.model.family}), {built / 1e6:.2f}M params, seq_len "
          f"{cfg.data.seq_len}, {tokens_per_step:,} tokens/step, ZeRO-{zero}, "
          f"{'bf16' if ds['bf16']['enabled'] else 'fp32'}, {adam}, nccl; {fpt:.4g} FLOPs/token, so 45% MFU on an "
          f"H100/H200 is {0.45 * peak_flops('H100') / fpt:,.0f} tokens/s")


if __name__ == "__main__":
    main()
