"""DeepSpeed JSON in, the exact dict handed to `deepspeed.initialize` out.

Fields that define the experiment are "auto" in configs/deepspeed/*.json (or left out) and filled
from the run config; a concrete value that disagrees with the run config is an error, named with the
file and field, before any process starts. Precision and the Adam implementation depend on the
device: "auto" means bf16 and DeepSpeed's own Adam on GPUs, fp32 and torch's AdamW on CPUs (there
is no fused Adam on CPU).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from scalelab.training.config import TrainConfig

AUTO = "auto"


class DeepSpeedConfigError(ValueError):
    """The DeepSpeed JSON can't run this config (phrased as `FILE: field: message`)."""


def read_deepspeed_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DeepSpeedConfigError(f"{path}: DeepSpeed config not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DeepSpeedConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DeepSpeedConfigError(f"{path}: the top level must be an object")
    return data


def resolve_deepspeed_config(cfg: TrainConfig, world_size: int, on_gpu: bool, bf16_ok: bool) -> dict[str, Any]:
    source = cfg.deepspeed
    ds = copy.deepcopy(read_deepspeed_json(cfg.deepspeed_json()))

    def fill(node: dict, key: str, value: Any, dotted: str, why: str) -> None:
        current = node.get(key, AUTO)
        if current == AUTO:
            node[key] = value
        elif current != value:
            raise DeepSpeedConfigError(f"{source}: {dotted}: {current!r}, but {why} gives {value!r} "
                                       f"(write \"auto\" to take it from the run config)")

    mb, ga = cfg.batch.micro_batch_size, cfg.batch.grad_accum
    fill(ds, "train_micro_batch_size_per_gpu", mb, "train_micro_batch_size_per_gpu", "batch.micro_batch_size")
    fill(ds, "gradient_accumulation_steps", ga, "gradient_accumulation_steps", "batch.grad_accum")
    fill(ds, "train_batch_size", mb * ga * world_size, "train_batch_size",
         f"micro_batch_size {mb} × grad_accum {ga} × {world_size} processes")
    fill(ds, "gradient_clipping", cfg.optimizer.grad_clip, "gradient_clipping", "optimizer.grad_clip")

    if "scheduler" in ds:
        raise DeepSpeedConfigError(f"{source}: scheduler: the learning-rate schedule belongs to the run config "
                                   f"(schedule: warmup, decay); remove it here")
    opt = ds.setdefault("optimizer", {"type": "AdamW", "params": {}})
    if str(opt.get("type", "")).lower() not in ("adam", "adamw"):
        raise DeepSpeedConfigError(f"{source}: optimizer.type: {opt.get('type')!r}; scalelab trains with Adam or AdamW")
    params = opt.setdefault("params", {})
    o = cfg.optimizer
    # weight_decay here is the default; the trainer's parameter groups exempt biases, norms and embeddings.
    for key, value in (("lr", o.lr), ("betas", list(o.betas)), ("eps", o.eps), ("weight_decay", o.weight_decay)):
        fill(params, key, value, f"optimizer.params.{key}", f"optimizer.{key}")
    if params.get("torch_adam", AUTO) == AUTO:
        params["torch_adam"] = not on_gpu

    bf16 = ds.setdefault("bf16", {})
    if bf16.get("enabled", AUTO) == AUTO:
        bf16["enabled"] = bool(on_gpu and bf16_ok)
    fp16 = ds.get("fp16", {})
    if fp16.get("enabled") is True and bf16["enabled"]:
        raise DeepSpeedConfigError(f"{source}: fp16.enabled and bf16.enabled: choose one")
    if (bf16["enabled"] or fp16.get("enabled") is True) and not on_gpu:
        raise DeepSpeedConfigError(f"{source}: bf16/fp16: half precision needs a GPU here; set \"auto\" or false")

    zero = ds.setdefault("zero_optimization", {"stage": 0})
    if zero.get("stage", 0) not in (0, 1, 2, 3):
        raise DeepSpeedConfigError(f"{source}: zero_optimization.stage: {zero.get('stage')!r}; must be 0, 1, 2 or 3")
    for key in ("offload_optimizer", "offload_param"):
        device = zero.get(key, {}).get("device", "none")
        if device == "nvme":
            raise DeepSpeedConfigError(f"{source}: zero_optimization.{key}.device: nvme offload is not supported by scalelab")
    if zero.get("offload_param", {}).get("device", "none") != "none" and zero.get("stage") != 3:
        raise DeepSpeedConfigError(f"{source}: zero_optimization.offload_param: parameter offload needs stage 3")
    ds.setdefault("steps_per_print", 10**9)  # scalelab logs its own metrics
    ds.setdefault("wall_clock_breakdown", False)
    return ds


def zero_stage(ds: dict[str, Any]) -> int:
    return int(ds.get("zero_optimization", {}).get("stage", 0))
