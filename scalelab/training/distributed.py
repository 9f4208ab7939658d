"""One way into torch.distributed for every launcher.

torchrun and the deepspeed launcher set RANK/WORLD_SIZE/MASTER_ADDR in the environment; Ray Train
has already created the process group when our code runs; a plain `python` start has neither and
becomes a world of one. DeepSpeed's communication layer wraps whichever group exists.
"""

from __future__ import annotations

import importlib
import os
import socket
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_shared_memory_all_reduce() -> None:
    """Keep DeepSpeed from building its CPU shared-memory all-reduce op.

    DeepSpeed JIT-compiles that C++ op at every init on the CPU (minutes on a 2-core machine, once per
    venv path) under a lock file that a worker killed mid-compile leaves held, so every later init
    waits forever. The op only serves `inference_all_reduce`, which training never calls: gradients
    go through torch.distributed either way.
    """
    # importlib, not `import deepspeed.comm.torch as`: the package's `torch` attribute is PyTorch itself.
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None


def init_distributed(device: Optional[torch.device] = None) -> Dist:
    import deepspeed
    import torch.distributed as dist

    skip_shared_memory_all_reduce()
    on_gpu = torch.cuda.is_available() if device is None else device.type == "cuda"
    if not dist.is_initialized() and "RANK" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    backend = dist.get_backend() if dist.is_initialized() else ("nccl" if on_gpu else "gloo")
    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device("cuda", local_rank) if on_gpu else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=device)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over ranks; outside a process group (`scalelab eval`) a world of one."""
    import torch.distributed as dist

    value = value.detach().clone()
    if dist.is_initialized():
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()
