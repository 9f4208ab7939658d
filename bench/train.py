"""Benchmark the training step: DeepSpeed ZeRO-2 against a plain PyTorch loop, same model and data.

Both loops run in this one process (a world of one), on the same batches from the sample corpus's
shards, with the same AdamW, gradient clipping and lr schedule; the figure is tokens/s after a
warm-up, and the ratio plain / DeepSpeed (target: DeepSpeed overhead <= 1.15x on CPU). On a GPU it
also prints MFU.

    python bench/train.py [--corpus out/sample] [--preset micro] [--steps 30]
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
from scalelab.training.flops import flops_per_token, mfu, peak_flops  # noqa: E402
from scalelab.training.model import GPT, lm_loss  # noqa: E402
from scalelab.training.schedule import lr_multiplier  # noqa: E402
from scalelab.training.trainer import param_groups  # noqa: E402


def batches(cfg: TrainConfig, corpus: Corpus, steps: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    loader = TrainBatches(ScaleTokens(corpus, cfg.data.scale), cfg.data.seq_len, cfg.batch.micro_batch_size,
                          cfg.batch.grad_accum, 0, 1, cfg.seed)
    return [loader.next_step() for _ in range(steps)]


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


def deepspeed_loop(cfg, model_cfg, data, device, warmup, total):
    import deepspeed

    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg)
    ds = resolve_deepspeed_config(cfg, 1, device.type == "cuda", device.type == "cuda")
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model, cfg.optimizer.weight_decay),
                                      config=ds, lr_scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(
                                          o, lr_multiplier(cfg.schedule, total)))

    def step(micro):
        for x, y in micro:
            loss = lm_loss(engine(x.to(device)), y.to(device))
            engine.backward(loss)
            engine.step()

    return timed(step, data, warmup, device), ds


def plain_loop(cfg, model_cfg, data, device, warmup, total, bf16: bool):
    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg).to(device)
    o = cfg.optimizer
    opt = torch.optim.AdamW(param_groups(model, o.weight_decay), lr=o.lr, betas=o.betas, eps=o.eps,
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_multiplier(cfg.schedule, total))
    accum = len(data[0])

    def step(micro):
        for x, y in micro:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = lm_loss(model(x.to(device)), y.to(device)) / accum
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
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--deepspeed", default=str(REPO / "configs" / "deepspeed" / "zero2.json"))
    args = p.parse_args()

    corpus = Corpus(args.corpus)
    cfg = TrainConfig.model_validate({
        "data": {"corpus": args.corpus, "scale": args.scale, "seq_len": args.seq_len},
        "model": {"preset": args.preset, "context": max(args.seq_len, 256)},
        "batch": {"micro_batch_size": args.micro_batch, "grad_accum": args.grad_accum},
        "deepspeed": args.deepspeed})
    dist = init_distributed()
    device = dist.device
    model_cfg = cfg.model.build(corpus.vocab_size, args.seq_len)
    data = batches(cfg, corpus, args.steps)
    tokens_per_step = args.micro_batch * args.grad_accum * args.seq_len

    ds_times, ds = deepspeed_loop(cfg, model_cfg, data, device, args.warmup, args.steps)
    plain_times = plain_loop(cfg, model_cfg, data, device, args.warmup, args.steps, ds["bf16"]["enabled"])

    n = sum(p.numel() for p in GPT(model_cfg).parameters())
    fpt = flops_per_token(model_cfg, args.seq_len)
    peak = peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"model {args.preset}: {n / 1e6:.2f}M params, seq_len {args.seq_len}, {tokens_per_step:,} tokens/step, "
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


if __name__ == "__main__":
    main()
