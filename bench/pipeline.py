"""Benchmark the corpus build on the sample corpus.

Prints, per stage, documents/s and MB/s per CPU core (each stage timed alone in this process over
every document that reaches it), then the whole build as a Ray job: wall time, throughput per
core, and the driver's peak RSS.

    python bench/pipeline.py [--config configs/corpus/sample.yaml] [--repeat 3] [--input PATH ...]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scalelab.pipelines.build import build_corpus, finish_documents  # noqa: E402
from scalelab.pipelines.config import load_corpus_config  # noqa: E402
from scalelab.pipelines.inputs import resolve_inputs  # noqa: E402
from scalelab.pipelines.partition_writer import write_partition  # noqa: E402
from scalelab.pipelines.readers import read_input  # noqa: E402
from scalelab.pipelines.steps import build_steps  # noqa: E402


def size_of(doc: dict) -> int:
    if doc.get("raw") is not None:
        return len(doc["raw"])
    return len(doc["text"].encode("utf-8")) if doc.get("text") else 0


def bench_stages(cfg, repeat: int) -> list[tuple[str, int, int, float]]:
    files = resolve_inputs(cfg.inputs)
    rows = []
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        docs = [d for f in files for d in read_input(f, cfg.extract)]
        best = min(best, time.perf_counter() - t)
    rows.append(("read", len(docs), sum(d["raw_bytes"] for d in docs), best))

    live = [d for d in docs if d["drop_reason"] is None]
    for step in build_steps(cfg):
        best = float("inf")
        for _ in range(repeat):
            batch = [copy.copy(d) for d in live]
            size = sum(size_of(d) for d in batch)
            t = time.perf_counter()
            kept = [d for d in batch if step(d) is None]
            best = min(best, time.perf_counter() - t)
        rows.append((step.stage, len(live), size, best))
        live = kept

    parts = 1
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            batch = [copy.copy(d) for d in live]
            size = sum(size_of(d) for d in batch)
            t = time.perf_counter()
            table = finish_documents(batch, cfg, parts)
            write_partition(table, cfg, tmp)
            best = min(best, time.perf_counter() - t)
    rows.append(("exact_dedup+write", len(live), size, best))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(REPO / "configs/corpus/sample.yaml"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--input", action="append", default=[], help="measure on these inputs instead")
    args = ap.parse_args()
    os.chdir(REPO)
    cfg = load_corpus_config(args.config)
    if args.input:
        from scalelab.pipelines.config import InputSpec

        cfg = cfg.model_copy(update={"inputs": [InputSpec(path=p) for p in args.input]})

    print(f"machine: {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    print(f"\nper stage, one process (best of {args.repeat}); bytes are what enters the stage:")
    print(f"{'stage':<20}{'docs in':>9}{'MB in':>9}{'seconds':>10}{'docs/s':>11}{'MB/s':>9}")
    for stage, n, size, sec in bench_stages(cfg, args.repeat):
        print(f"{stage:<20}{n:>9}{size / 1e6:>9.2f}{sec:>10.3f}{n / sec:>11.0f}{size / 1e6 / sec:>9.2f}")

    import ray

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    cores = int(ray.cluster_resources()["CPU"])
    with tempfile.TemporaryDirectory() as tmp:
        build_corpus(cfg, Path(tmp) / "warm")  # first run pays worker start-up and langdetect loading
        t = time.perf_counter()
        result = build_corpus(cfg, Path(tmp) / "timed")
        wall = time.perf_counter() - t
    s = result.stats
    print(f"\nwhole build on Ray ({cores} CPUs, second run): {wall:.1f}s wall for {s.documents_in} documents, "
          f"{s.bytes_in / 1e6:.1f} MB in, {s.documents_kept} kept")
    print(f"  per core: {s.documents_in / wall / cores:.1f} docs/s, {s.bytes_in / 1e6 / wall / cores:.2f} MB/s")
    print(f"  driver peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
