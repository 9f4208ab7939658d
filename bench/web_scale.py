"""Corpus builds at web scale, side by side, on one real WARC (bench/web_warc.py: the Debian
handbook's 1,270 pages as HTTP responses, copies of them lightly edited as mirrors).

In one run, on the same machine:
1. the floor, read + extract alone (fastwarc + resiliparse, bench/read_extract_floor.py), and
   datatrove 0.10.1's FineWeb-style pipeline (bench/datatrove_pipeline.py), both in the side venv
   when it exists, on the one-copy WARC;
2. scalelab's steps, one at a time in this process, on the same WARC (bench/pipeline.py's table);
3. scalelab's whole build (language ID, filters, PII, exact and near dedup, tokenizer, shards) on
   the same WARC, then at 1x and 4x copies: wall, CPU seconds of every process of the build (driver,
   Ray's daemons and workers), cores busy, peak memory summed over them (PSS).

Prints the ratios the targets are stated in: MB of HTML per core-second against datatrove and the
floor, cores busy, peak memory at 4x over 1x.

    python bench/web_scale.py [--copies 10] [--scale 4] [--side-venv ../side-venv] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[0] = str(REPO)  # not bench/: a module there must not shadow the standard library's
sys.path.append(str(BENCH))

from pipeline import bench_stages  # noqa: E402
from process_meter import ProcessTreeMeter, Usage  # noqa: E402
from web_warc import write_web_warc  # noqa: E402

from scalelab.pipelines.build import build_corpus  # noqa: E402
from scalelab.pipelines.config import InputSpec, load_corpus_config  # noqa: E402

# The sample build's settings (every language kept, Gopher/C4/FineWeb, PII, exact and near dedup,
# a trained BPE, shards), with partition counts left to the input size.
OVERRIDES = ["output.num_partitions=auto", "dedup.minhash.num_partitions=auto"]


def corpus_config(warc: Path):
    cfg = load_corpus_config(REPO / "configs/corpus/sample.yaml", OVERRIDES)
    return cfg.model_copy(update={"inputs": [InputSpec(path=str(warc), type="warc")]})


def side_run(side_python: Path, script: str, *args: str) -> dict | None:
    if not side_python.exists():
        return None
    done = subprocess.run([str(side_python), str(BENCH / script), *args], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  {script} failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def measured_build(warc: Path, out: Path, cores: int, object_store_mb: int | None = None) -> tuple[Usage, object]:
    """A fresh embedded Ray per build, so idle workers of an earlier build count nowhere. Its object
    store is sized as a cluster's would be (a fixed share of a node); near-dedup's shuffle lives
    there and spills to disk beyond it."""
    import ray

    shutil.rmtree(out, ignore_errors=True)  # the bench's own folder: a build left by an earlier run would resume
    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=object_store_mb * 2**20 if object_store_mb else None)
    meter = ProcessTreeMeter().start()
    try:
        result = build_corpus(corpus_config(warc), out, log=lambda _: None)
    finally:
        usage = meter.stop()
        ray.shutdown()
    return usage, result


def _ratio(rate: float, anchor: float | None) -> str:
    return f"{rate / anchor:.2f}x" if anchor else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=10, help="copies of the handbook at 1x")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--side-venv", type=Path, default=REPO.parent / "side-venv")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--skip-scale", action="store_true", help="only the side-by-side on one copy")
    ap.add_argument("--object-store-mb", type=int, default=300,
                    help="Ray's object store per build (0: Ray's default, 30%% of memory, which nothing fills "
                         "below several GB of input, so memory then grows with the input up to it)")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    work = args.work or Path(tempfile.mkdtemp(prefix="web-scale-"))
    side_python = args.side_venv / "bin" / "python"
    print(f"machine: {cores} CPU cores; work folder {work}")

    one = work / "web-1copy.warc.gz"
    html_one = write_web_warc(one, 1) / 1e6
    print(f"\n1. one copy: {html_one:.1f} MB of HTML, {one.stat().st_size / 1e6:.1f} MB gzipped")
    floor = side_run(side_python, "read_extract_floor.py", str(one))
    floor_rate = html_one / floor["cpu_s"] if floor else None
    if floor:
        print(f"  floor (fastwarc + resiliparse, read + extract): {floor_rate:.2f} MB/CPU-s")
    shutil.rmtree(work / "datatrove", ignore_errors=True)
    dt = side_run(side_python, "datatrove_pipeline.py", str(one), str(work / "datatrove"))
    dt_rate = html_one / dt["cpu_s"] if dt else None
    if dt:
        print(f"  datatrove 0.10.1 (1 task, Trafilatura, Gopher/C4/FineWeb, no language ID): {dt_rate:.2f} MB/CPU-s")
    if not (floor or dt):
        print(f"  (no side venv at {args.side_venv}: see bench/datatrove_pipeline.py for how to make one)")

    print("\n2. scalelab's steps, one process, on the same WARC; bytes are what enters the step:")
    print(f"{'step':<20}{'docs in':>9}{'MB in':>9}{'seconds':>9}{'MB/s':>9}")
    for stage, n, size, sec in bench_stages(corpus_config(one), repeat=1):
        print(f"{stage:<20}{n:>9}{size / 1e6:>9.2f}{sec:>9.2f}{size / 1e6 / sec:>9.2f}")

    usage, result = measured_build(one, work / "build-1copy", cores, args.object_store_mb)
    per_core = html_one / (usage.wall_s * cores)
    print(f"\n3. scalelab's whole build, same WARC, {cores} cores: {usage.wall_s:.1f} s wall, {usage.cpu_s:.1f} CPU-s, "
          f"{html_one / usage.cpu_s:.2f} MB/CPU-s, {per_core:.2f} MB per core-second, cores busy {usage.cores_busy(cores):.0%}")
    if dt_rate:
        print(f"  scalelab / datatrove per core: {per_core / dt_rate:.1f}x (target >= 10x)")
    if floor_rate:
        print(f"  scalelab / floor per core: {per_core / floor_rate:.2f}x (target >= 0.2x)")
    if args.skip_scale:
        return

    print(f"\n4. at scale: 1x = {args.copies} copies, {args.scale}x = {args.copies * args.scale} copies; "
          f"object store {args.object_store_mb or 'Ray default'} MB")
    print(f"{'input':<8}{'MB HTML':>9}{'wall s':>9}{'CPU-s':>9}{'MB/core-s':>11}{'busy':>7}{'peak PSS MB':>13}{'kept':>9}"
          f"{'/datatrove':>12}{'/floor':>8}")
    peaks = []
    for copies in (args.copies, args.copies * args.scale):
        warc = work / f"web-{copies}copies.warc.gz"
        html = write_web_warc(warc, copies) / 1e6
        usage, result = measured_build(warc, work / f"build-{copies}", cores, args.object_store_mb)
        peaks.append(usage)
        print(f"{copies // args.copies}x{'':<6}{html:>9.0f}{usage.wall_s:>9.1f}{usage.cpu_s:>9.1f}"
              f"{html / (usage.wall_s * cores):>11.2f}{usage.cores_busy(cores):>7.0%}{usage.peak_pss_mb:>13.0f}"
              f"{result.stats.documents_kept:>9}"
              f"{_ratio(html / (usage.wall_s * cores), dt_rate):>12}{_ratio(html / (usage.wall_s * cores), floor_rate):>8}")
        shutil.rmtree(work / f"build-{copies}", ignore_errors=True)
        warc.unlink()
    print(f"  peak memory {args.scale}x / 1x: {peaks[1].peak_pss_mb / peaks[0].peak_pss_mb:.2f} (target <= 1.3)")
    for scale, usage in zip(("1x", f"{args.scale}x"), peaks):
        print(f"  {scale}: CPU-s by process {usage.cpu_by_kind}; PSS MB at the peak ({usage.peak_at_s:.0f} s in) "
              f"{usage.peak_by_kind}")


if __name__ == "__main__":
    main()
