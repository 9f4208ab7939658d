"""How much of a sweep's wall time is spent in training steps (target: >= 70% for the demo).

Runs a sweep config through the same code as `scalelab sweep` (embedded Ray, Ray Train, DeepSpeed),
then splits the time: training steps (from each run's per-step throughput in curves.parquet), the
runs' evaluations, checkpoints and other in-loop work (their wall_time_s minus the step time), and
what remains of wall time × concurrency: Ray Train and DeepSpeed start-ups, process exits, idle slots.

    python bench/sweep_share.py [configs/sweep/demo.yaml] [--set output=/tmp/bench-sweep ...]
    python bench/sweep_share.py --report out/sweeps/demo --wall 412 --concurrency 2   # a sweep already run

The sweep's corpus must be built first (`scalelab corpus build configs/corpus/english.yaml`).
Completed runs are skipped by a sweep, so point `output` at a fresh folder to measure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pyarrow.parquet as pq  # noqa: E402
from rich.console import Console  # noqa: E402

from scalelab.orchestrator.sweep import run_sweep  # noqa: E402
from scalelab.orchestrator.sweep_config import load_sweep_config  # noqa: E402


def split_time(report_dir: Path, wall: float, concurrency: int) -> None:
    """Print where the slot time went: steps, the rest of the runs' loops, and outside the runs."""
    runs = pq.read_table(report_dir / "runs.parquet").to_pylist()
    curves = pq.read_table(report_dir / "curves.parquet").to_pylist()
    done = [r for r in runs if r["status"] == "complete"]
    tokens_per_step = {r["run_id"]: r["tokens_seen"] / max(1, r["steps"]) for r in done}
    step_s = sum(tokens_per_step[c["run_id"]] / c["tokens_per_s"] for c in curves
                 if c["run_id"] in tokens_per_step and c["tokens_per_s"])
    in_run_s = sum(r["wall_time_s"] or 0.0 for r in done)
    capacity = wall * concurrency
    print(f"{len(done)} of {len(runs)} runs complete, {concurrency} at a time")
    print(f"wall time                         {wall:8.1f} s  (x {concurrency} run slots = {capacity:.1f} slot-s)")
    print(f"training steps                    {step_s:8.1f} s  {step_s / capacity:6.1%} of slot time")
    print(f"evaluation, checkpoints, in-loop  {in_run_s - step_s:8.1f} s  {(in_run_s - step_s) / capacity:6.1%}")
    print(f"start-ups, exits, idle slots      {capacity - in_run_s:8.1f} s  {(capacity - in_run_s) / capacity:6.1%}")
    print(f"per run: start-up and exit        {(capacity - in_run_s) / max(1, len(done)):8.1f} s on average")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default=str(REPO / "configs" / "sweep" / "demo.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--report", type=Path, help="Measure a sweep already run: its report folder ...")
    ap.add_argument("--wall", type=float, help="... its wall time in seconds (scalelab sweep prints it) ...")
    ap.add_argument("--concurrency", type=int, default=2, help="... and its runs in flight.")
    args = ap.parse_args()
    if args.report:
        split_time(args.report, args.wall, args.concurrency)
        return
    cfg = load_sweep_config(args.config, args.overrides)
    started = time.perf_counter()
    result = run_sweep(cfg, args.config, console=Console(stderr=True))
    print(f"sweep {cfg.name}: {cfg.resources.workers} worker(s) a run")
    split_time(result.report_dir, time.perf_counter() - started, result.concurrency)


if __name__ == "__main__":
    main()
