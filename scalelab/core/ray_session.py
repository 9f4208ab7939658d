"""Joining a Ray cluster or starting an embedded one, the same way for every scalelab command."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import scalelab


def ensure_ray(address: Optional[str] = None, num_cpus: Optional[int] = None, quiet: bool = True) -> None:
    """Use the Ray already initialized in this process, else join `address`, else start a local one.

    On a cluster the workers get this process's `scalelab` package (one top-level package holds all
    of it) through the runtime env's `py_modules`, so nodes need its dependencies installed but not
    scalelab itself; the compiled MinHash kernel does not travel (workers without an installed
    scalelab use the exact numpy MinHash, same results, slower).
    """
    import ray

    if quiet:
        quiet_ray_data()
    if ray.is_initialized():
        return
    kwargs: dict = {"include_dashboard": False, "log_to_driver": not quiet,
                    "logging_level": logging.ERROR if quiet else logging.INFO}
    if address is None:
        # "local" starts a fresh embedded Ray even when another cluster runs on this machine;
        # a bare ray.init() would silently join that one.
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
        return
    env = {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"), **fault_hook_env()}
    ray.init(address=address, runtime_env={"py_modules": [scalelab], "env_vars": env}, **kwargs)


def fault_hook_env() -> dict[str, str]:
    """The test hooks set in this process (SCALELAB_*FAULT*), to pass on to Ray workers so that
    fault tests work on a cluster too (see scalelab/pipelines/fault_hooks.py, scalelab/training/faults.py)."""
    return {k: v for k, v in os.environ.items() if k.startswith("SCALELAB_") and "FAULT" in k}


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def quiet_ray_data() -> None:
    """Ray Data logs every operator's progress; scalelab prints its own summary instead.

    Its progress settings are set only once something has imported it (Ray Train does; the corpus
    build does not, and importing it costs a second of CPU)."""
    for name in ("ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "ray.data" not in sys.modules:
        return
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_rich_progress_bars = False
