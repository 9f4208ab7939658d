"""What checkpointing costs the corpus build, and what a resume redoes.

1. The sample build with checkpointed units (this tree) against the same build without them
   (`--baseline REV`: a commit before units existed, checked out in a temporary worktree),
   alternating, each a fresh `scalelab corpus build` process with its own Ray.
2. The build SIGKILLed (with its Ray) once half of the process phase's units are done, then
   resumed: units redone, and the seconds of work lost to the kill.

    python bench/resume.py [--baseline aaa4f1f] [--repeat 3] [--config configs/corpus/sample.yaml]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/tokenize.py would shadow the standard library's tokenize (imported by pyarrow's imports).
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pyarrow.parquet as pq  # noqa: E402


def build(cwd: Path, config: str, out: Path) -> float:
    return build_with(cwd, config, out, [])


def build_with(cwd: Path, config: str, out: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "scalelab.cli", "corpus", "build", config, "--out", str(out), *extra]
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, "RAY_ADDRESS": ""}, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"build failed in {cwd}:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "-f", "--detach", str(where), rev], cwd=REPO, check=True,
                   capture_output=True)
    for so in (REPO / "scalelab/pipelines/minhash").glob("_kernel*.so"):  # the compiled MinHash kernel
        shutil.copy(so, where / "scalelab/pipelines/minhash")
    return where


def units_done(out: Path, phase: str) -> int:
    return len(list((out / "phase" / phase).glob("*.done.json")))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default="aaa4f1f", help="a commit whose build has no checkpoints")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--config", default="configs/corpus/sample.yaml")
    ap.add_argument("--no-baseline", action="store_true", help="skip the comparison with --baseline")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        times: dict[str, list[float]] = {"checkpointed": [], "baseline": []}
        build(REPO, args.config, tmp / "warm")  # warms the page cache and the worker imports
        base = None if args.no_baseline else worktree(args.baseline, tmp / "baseline")
        try:
            for i in range(args.repeat):
                times["checkpointed"].append(build(REPO, args.config, tmp / f"new{i}"))
                if base is not None:
                    times["baseline"].append(build(base, args.config, tmp / f"old{i}"))
        finally:
            if base is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
        new = statistics.median(times["checkpointed"])
        print(f"sample build, median of {args.repeat} (whole CLI process, Ray start-up included):")
        print(f"  with checkpoints (this tree):     {new:6.1f} s   {[round(t, 1) for t in times['checkpointed']]}")
        if base is not None:
            old = statistics.median(times["baseline"])
            print(f"  without checkpoints ({args.baseline}): {old:6.1f} s   {[round(t, 1) for t in times['baseline']]}")
            print(f"  overhead: {100 * (new / old - 1):+.1f}%  (target <= 10%)")

        # The checkpoints' own I/O: write and read back every intermediate file the phases kept.
        kept = tmp / "kept"
        build_cmd_seconds = build_with(REPO, args.config, kept, ["--set", "output.keep_phase_data=true"])
        files = [p for p in (kept / "phase").rglob("*.parquet")]
        io_start = time.perf_counter()
        for p in files:
            table = pq.read_table(p)
            pq.write_table(table, tmp / "rewrite.parquet", compression="zstd")
        io = time.perf_counter() - io_start
        size = sum(p.stat().st_size for p in files)
        print(f"  checkpoint files: {len(files)}, {size / 2**20:.1f} MiB; writing and reading them all once: "
              f"{io:.2f} s = {100 * io / build_cmd_seconds:.1f}% of the build")

        # A kill at 50% of the process phase, then the same command again.
        out = tmp / "killed"
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "scalelab.cli", "corpus", "build", args.config, "--out", str(out)]
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total_units = None
        while proc.poll() is None:
            plan = out / "phase" / "process" / "plan.json"
            if total_units is None and plan.is_file():
                import json

                total_units = len(json.loads(plan.read_text())["units"])
            if total_units and units_done(out, "process") >= total_units / 2:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = time.perf_counter() - start
        time.sleep(2)
        done = units_done(out, "process")
        started = len(list((out / "phase" / "process").glob("*.started")))
        resume = build(REPO, args.config, out)
        print(f"\nkilled at {killed_at:.1f} s with {done} of {total_units} process units done ({started} started, lost)")
        print(f"  resume: {resume:.1f} s; kill + resume = {killed_at + resume:.1f} s against {new:.1f} s undisturbed")
        print(f"  work redone: {started} unit(s) of {total_units}; time lost to the kill: "
              f"{killed_at + resume - new:+.1f} s (one Ray start-up is part of it)")


if __name__ == "__main__":
    main()
