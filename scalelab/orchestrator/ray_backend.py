"""Runs as Ray Train jobs: one `TorchTrainer` per run, its workers calling training's `train`.

Ray Train creates the process group (gloo on CPUs, NCCL on GPUs) and `train` hands it to DeepSpeed.
On a worker failure Ray Train restarts the worker group, up to `retries` times, and `train` resumes
from the run's latest DeepSpeed checkpoint in its run folder, so that folder (`storage`) must be on
storage every node reaches. Ray Train's own files go beside it, under `_ray_train/`.

With an object-store output the run folder is a local working folder, and a finished run is
published to OUTPUT/runs/<run_id> in the bucket (orchestrator/run_publish.py); whether a run is
complete, and its attempts, are read and written there. That working folder is on one node's disk,
so all workers of a run are placed on one node (STRICT_PACK) unless `storage` names a shared folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from scalelab.core.ray_session import quiet_ray_data
from scalelab.core.storage import Location
from scalelab.orchestrator.plan import RunSpec, SweepError
from scalelab.orchestrator.sweep_config import SweepConfig


def _worker_loop(config: dict[str, Any]) -> None:
    """The function every Ray Train worker runs: its runs one after another, each resumed if it has a
    checkpoint. A run already complete (a restart of the group after a later run failed) is skipped,
    so a lane of runs pays Ray Train's and the imports' start-up once."""
    os.environ.update(config["env"])
    import ray.train
    import ray.train.torch

    from scalelab.orchestrator.run_state import completed_summary, record_attempt
    from scalelab.training.config import TrainConfig
    from scalelab.training.trainer import train
    from scalelab.training.worker import quiet_deepspeed

    quiet_deepspeed()
    for run, results in zip(config["runs"], config["results"]):
        cfg = TrainConfig.model_validate(run)
        home = Location.of(results or cfg.output)
        if completed_summary(home, cfg.name, cfg.experiment_hash()):
            continue
        if ray.train.get_context().get_world_rank() == 0:
            record_attempt(home, "ray")
        train(cfg, resume=True, device=ray.train.torch.get_device())
        if results:
            _publish(cfg, home)


def _publish(cfg, home: Location) -> None:
    """Each node's files to the bucket, then rank 0's summary; then the working folders go."""
    import ray.train

    from scalelab.orchestrator.run_publish import drop_work_dir, upload_files, upload_summary
    from scalelab.training.distributed import barrier

    context, work = ray.train.get_context(), Path(cfg.output)
    barrier()  # every rank's last files are written
    if context.get_local_rank() == 0:
        upload_files(work, home)
    barrier()
    if context.get_world_rank() == 0:
        upload_summary(work, home, cfg)
    barrier()
    if context.get_local_rank() == 0:
        drop_work_dir(work)


def _results(spec: RunSpec) -> Optional[str]:
    return spec.home.url if spec.results_root else None


def node_slots(sweep: SweepConfig) -> list[int]:
    """How many workers of this size each alive node can hold at once."""
    import ray

    r = sweep.resources
    slots = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        fit = res.get("CPU", 0) // r.cpus_per_worker
        if r.use_gpu and r.gpus_per_worker > 0:
            fit = min(fit, res.get("GPU", 0) // r.gpus_per_worker)
        slots.append(int(fit))
    return slots


def worker_slots(sweep: SweepConfig) -> int:
    """How many workers of this size the cluster's alive nodes can hold at once."""
    return sum(node_slots(sweep))


def runs_in_flight(sweep: SweepConfig, source: str) -> int:
    """Concurrency the cluster can give; a SweepError if not even one run fits."""
    r = sweep.resources
    if sweep.runs_on_one_node:
        return _runs_in_flight_on_one_node(sweep, source)
    slots = worker_slots(sweep)
    if slots < r.workers:
        need = f"{r.cpus_per_worker:g} CPU" + (f" and {r.gpus_per_worker:g} GPU" if r.use_gpu else "")
        raise SweepError(f"{source}: resources.workers: a run needs {r.workers} workers of {need} each; "
                         f"this cluster can place at most {slots} at once")
    return max(1, min(sweep.concurrency, slots // r.workers))


def _runs_in_flight_on_one_node(sweep: SweepConfig, source: str) -> int:
    """Concurrency when each run's workers must share a node (SweepConfig.runs_on_one_node)."""
    r = sweep.resources
    per_node = node_slots(sweep)
    runs = sum(slots // r.workers for slots in per_node)
    if runs == 0:
        raise SweepError(f"{source}: resources.workers: a run needs {r.workers} workers on one node (its working "
                         f"folder is local, the output being {sweep.output}); the largest node holds "
                         f"{max(per_node, default=0)}; set storage: to a folder every node shares to spread a run")
    return max(1, min(sweep.concurrency, runs))


def launch_ray(specs: list[RunSpec], sweep: SweepConfig, env: dict[str, str]) -> None:
    """Run these runs, in order, in one Ray Train job; raises when one fails past its retries."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    quiet_ray_data()  # now that Ray Train has imported it
    r = sweep.resources
    resources = {"CPU": r.cpus_per_worker}
    if r.use_gpu:
        resources["GPU"] = r.gpus_per_worker
    # A run's working folder on one node's disk: all of its workers on that node.
    placement = {"placement_strategy": "STRICT_PACK"} if sweep.runs_on_one_node else {}
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"runs": [spec.config.model_dump(mode="json") for spec in specs],
                           "results": [_results(spec) for spec in specs], "env": env},
        torch_config=TorchConfig(backend="nccl" if r.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=r.workers, use_gpu=r.use_gpu, resources_per_worker=resources,
                                     **placement),
        run_config=RunConfig(name=specs[0].run_id, storage_path=str(specs[0].run_dir.parent / "_ray_train"),
                             failure_config=FailureConfig(max_failures=sweep.retries)),
    )
    trainer.fit()
