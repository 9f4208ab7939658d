"""`scalelab sweep`: plan the runs, check them all, skip what is done, run the rest, keep the reports.

Order of events: expand the sweep into runs (plan.py) and check every run as `scalelab train`
would (corpus checksums once), so a config mistake stops the sweep before anything starts. Runs
whose folder holds a complete summary for the same config are skipped; runs with checkpoints resume.
Then the runs go to the backend: Ray Train (a bounded number in flight, each on its own thread)
or the deepspeed launcher (one after another). `runs.parquet` and `curves.parquet` are rewritten
each time a run changes state.

An output in object storage (`output: s3://bucket/sweeps/x`) holds the same files: the reports are
written there object by object, and each run, trained in a local working folder, is published to
OUTPUT/runs/<run_id> when it ends (ray_backend.py); the bucket alone says which runs are complete.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.live import Live

from scalelab.orchestrator import reports
from scalelab.orchestrator.plan import RunSpec, SweepError, plan_sweep
from scalelab.orchestrator.run_state import attempts, completed_summary, first_started_at
from scalelab.orchestrator.sweep_config import SweepConfig
from scalelab.orchestrator.tables import status_table
from scalelab.core.atomic import write_json
from scalelab.core.manifest import verify
from scalelab.core.ray_session import ensure_ray
from scalelab.orchestrator.deepspeed_backend import launch_deepspeed, read_hostfile
from scalelab.core.output_folder import claim
from scalelab.core.storage import Location
from scalelab.training.launch import preflight
from scalelab.training.trainer import TrainError


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunState:
    spec: RunSpec
    status: str = "pending"  # pending, running, complete, failed
    attempts: int = 0
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    error: Optional[str] = None
    summary: Optional[dict[str, Any]] = None
    skipped: bool = False  # complete before this invocation


@dataclass
class SweepResult:
    runs: list[RunState]
    report_dir: Path | Location  # a Location for an object-store output
    concurrency: int
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


BACKENDS = ("ray", "deepspeed")
SWEEP_KIND = "sweep"


def check_backend(backend: str, hostfile: Optional[str]) -> None:
    """The launcher flags, checked before anything (a --dry-run too) so a typo never waits for a plan."""
    if backend not in BACKENDS:
        raise SweepError(f"--backend {backend}: must be one of {', '.join(BACKENDS)}")
    if backend == "deepspeed" and hostfile is None:
        raise SweepError("--backend deepspeed needs --hostfile FILE (lines like 'localhost slots=2')")


def check_runs(sweep: SweepConfig, runs: list[RunSpec], source: str, world_size: int) -> None:
    """Everything `scalelab train` checks, for every run, before any starts."""
    problems = verify(runs[0].config.data.corpus) if runs and runs[0].config.data.verify_checksums else []
    if problems:
        raise SweepError(f"{source}: corpus: the files don't match the manifest:\n  " + "\n  ".join(problems))
    for spec in runs:
        cfg = spec.config.model_copy(update={"data": spec.config.data.model_copy(update={"verify_checksums": False})})
        try:
            preflight(cfg, world_size, resume=True, on_gpu=sweep.resources.use_gpu)
        except TrainError as exc:
            raise SweepError(f"{source}: run {spec.run_id}: {exc}") from None


class Sweep:
    def __init__(self, sweep: SweepConfig, runs: list[RunSpec], report_dir: Path | Location):
        self.sweep, self.report_dir = sweep, report_dir
        self.states = [RunState(spec) for spec in runs]
        self._lock = threading.Lock()
        for s in self.states:
            s.summary = completed_summary(s.spec.home, s.spec.run_id, s.spec.config.experiment_hash())
            s.attempts = attempts(s.spec.home)
            if s.summary:
                s.status, s.skipped = "complete", True
                s.started_at, s.finished_at = first_started_at(s.spec.home), s.summary.get("finished_at")

    def write_reports(self) -> None:
        with self._lock:
            rows = [reports.run_row(self.sweep.name, s.spec, s.status, s.attempts, s.started_at, s.finished_at,
                                    s.error, s.summary) for s in self.states]
            reports.write_runs(self.report_dir, rows)
            reports.write_curves(self.report_dir, [s.spec.home for s in self.states])

    def run_lane(self, lane: list[RunState], launch) -> None:
        """Run these runs one after another in one job (`launch` takes their specs); one run is a lane of one."""
        for state in lane:
            state.status, state.started_at, state.error = "running", state.started_at or now(), None
        self.write_reports()
        error = None
        try:
            launch([state.spec for state in lane])
        except Exception as exc:  # a failed run is recorded; the sweep goes on with the others
            error = f"{type(exc).__name__}: {exc}"[-4000:]
        for state in lane:
            self._settle(state, error)
        self.write_reports()

    def _settle(self, state: RunState, error: Optional[str]) -> None:
        """Complete if its summary is there for this config; else failed with the job's error."""
        state.summary = completed_summary(state.spec.home, state.spec.run_id, state.spec.config.experiment_hash())
        if state.summary:
            state.status = "complete"
        else:
            state.status = "failed"
            state.error = error or "the run ended without writing summary.json"
        state.finished_at = state.summary["finished_at"] if state.summary else now()
        state.started_at = first_started_at(state.spec.home) or state.started_at
        state.attempts = attempts(state.spec.home)


def lanes(states: list[RunState], count: int) -> list[list[RunState]]:
    """`count` lanes of about equal work (its FLOPs cap, 6·N·tokens), largest first (LPT scheduling),
    each lane's runs smallest first so that early results come early."""
    work = [0.0] * count
    out: list[list[RunState]] = [[] for _ in range(count)]
    for state in sorted(states, key=lambda s: -s.spec.flops_6nd):
        i = work.index(min(work))
        out[i].append(state)
        work[i] += state.spec.flops_6nd
    return [sorted(lane, key=lambda s: s.spec.flops_6nd) for lane in out if lane]


def report_folder(sweep: SweepConfig) -> Path | Location:
    """The sweep's output: an absolute local folder, or its object-store URL."""
    return Location.of(sweep.output) if sweep.output_is_url else Path(sweep.output).expanduser().resolve()


def check_output(sweep: SweepConfig, backend: str, source: str) -> None:
    if sweep.output_is_url and backend != "ray":
        # The launcher's ranks may run on other hosts, where the driver can't publish their files from.
        raise SweepError(f"{source}: output {sweep.output}: object-store outputs need --backend ray; "
                         f"with the deepspeed launcher give a folder on shared storage")


def write_sweep_json(report_dir: Path | Location, sweep: SweepConfig, runs: list[RunSpec], backend: str) -> None:
    write_json(report_dir / "sweep.json", {"config": sweep.model_dump(mode="json"), "backend": backend,
                                         "runs": [r.run_id for r in runs]}, indent=2)


def run_sweep(sweep: SweepConfig, source: str = "sweep config", address: Optional[str] = None,
              backend: str = "ray", hostfile: Optional[str] = None, worker_env: Optional[dict[str, str]] = None,
              console: Optional[Console] = None, overwrite: bool = False) -> SweepResult:
    """Run every run of the sweep that isn't complete yet; return each run's final state.

    `worker_env` is set in every training process (tests use it for the fault hook).
    """
    console = console or Console()
    started = time.perf_counter()
    env = dict(worker_env or {})
    check_backend(backend, hostfile)
    check_output(sweep, backend, source)
    runs = plan_sweep(sweep, source)
    report_dir = report_folder(sweep)
    # Claimed before the checks create run folders in it (storage defaults to OUTPUT/runs);
    # sweeps from before the folder marker are recognized by their sweep.json.
    claim(report_dir, SWEEP_KIND, overwrite, legacy=("sweep.json",))
    world = sweep.resources.workers
    if backend == "deepspeed":

        slots = sum(s for _, s in read_hostfile(hostfile))
        if slots != world:
            raise SweepError(f"{source}: resources.workers is {world} but {hostfile} gives {slots} slots; "
                             f"they set the global batch, so they must agree")
    check_runs(sweep, runs, source, world)

    if backend == "ray":
        from scalelab.orchestrator.ray_backend import launch_ray, runs_in_flight

        ensure_ray(address)
        concurrency = runs_in_flight(sweep, source)

        def launch(specs: list[RunSpec]) -> None:
            launch_ray(specs, sweep, env)
    else:
        concurrency = 1

        def launch(specs: list[RunSpec]) -> None:
            (spec,) = specs
            for attempt in range(sweep.retries + 1):
                try:
                    return launch_deepspeed(spec, hostfile, env)
                except RuntimeError:
                    if attempt == sweep.retries:
                        raise

    # The reports are written only once every check has passed and the cluster's room is known.
    write_sweep_json(report_dir, sweep, runs, backend)
    state = Sweep(sweep, runs, report_dir)
    todo = [s for s in state.states if not s.skipped]

    state.write_reports()
    title = f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(todo)} already complete, {concurrency} at a time"
    packed = sweep.pack_runs and backend == "ray"
    work = lanes(todo, concurrency) if packed else [[s] for s in todo]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(state.run_lane, lane, launch): lane for lane in work}
        watch(console, state, futures, title)
    failed = [s.spec.run_id for s in state.states if s.status == "failed"]
    return SweepResult(runs=state.states, report_dir=report_dir, concurrency=concurrency,
                       seconds=time.perf_counter() - started, failed=failed)


def run_line(s: RunState) -> str:
    if s.summary:
        m = s.summary
        bpb = f" ({m['best_val_bpb']:.4f} bpb)" if m.get("best_val_bpb") is not None else ""
        how = {"early_stop": "stopped at a plateau", "cap": "hit its cap", "length": "fixed length"}.get(
            m.get("stopped_by", "length"), "")
        conv = {True: "converged", False: "NOT converged", None: "convergence unknown"}[m.get("converged")]
        outcome = (f"best val loss {m['best_val_loss']:.4f}{bpb}, {m['steps']:,} steps, {m['epochs']:.1f} epochs "
                   f"({how}, {conv})")
    else:
        outcome = (s.error or "").splitlines()[0][:300] if s.error else ""
    return f"  {s.spec.run_id}: {s.status}{' (already complete)' if s.skipped else ''}, {s.attempts} attempts, {outcome}"


def watch(console: Console, state: Sweep, futures: dict[Future, list[RunState]], title: str) -> None:
    """A live status table on a terminal; elsewhere (logs, CI) a line per run as it ends."""
    if console.is_terminal:
        with Live(status_table(state.states, title), console=console, refresh_per_second=1) as live:
            while not all(f.done() for f in futures):
                wait(list(futures), timeout=1.0, return_when=FIRST_COMPLETED)
                live.update(status_table(state.states, title))
            live.update(status_table(state.states, title))
    else:
        console.print(title)
        for s in state.states:
            if s.skipped:
                console.print(run_line(s))
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                for s in futures[f]:
                    console.print(run_line(s))
    for f in futures:
        f.result()  # run_lane records a run's failure itself; anything raised here is a bug to surface
