"""Benchmark the near-duplicate stage on real documents, in one process (so figures are per core).

1. Signatures: datasketch's per-document MinHash(128).update_batch over word 5-gram shingles, against
   scalelab's batched signature stage (compiled kernel) on the same documents; MB per CPU second
   of this process (and per wall second) and the ratio, each the better of two runs.
2. Later steps at 1x and 4x the input (the 4x copies are edited every 40th word, so they are near
   duplicates of each other): banding, candidate pairs, verification, connected components
   (driver union-find and large-star/small-star on a local 2-CPU Ray), the guarded clusters
   (components checked against their keepers, minhash/guard.py) and peak RSS.

    python bench/dedup.py [--corpora ../shared/corpora]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not bench/: its tokenize.py would shadow the standard library's

import numpy as np  # noqa: E402

from scalelab.pipelines.config import MinHashConfig  # noqa: E402
from scalelab.pipelines.minhash import guard  # noqa: E402
from scalelab.pipelines.minhash import near_dedup as N  # noqa: E402
from scalelab.pipelines.minhash.accuracy import cluster  # noqa: E402
from scalelab.pipelines.minhash.banding import band_keys  # noqa: E402
from scalelab.pipelines.minhash.components import canonical, distributed_components, union_find  # noqa: E402
from scalelab.pipelines.minhash.signatures import (  # noqa: E402
    datasketch_signatures, minhash_signatures, shingle_hashes, shingles, signatures_of_hashes, simd_level)
from bench.real_texts import handbook_texts  # noqa: E402


def mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn(): on a shared machine the CPU seconds are
    the per-core cost; both anchors and scalelab are measured the same way."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_signatures(texts: list[str]) -> None:
    from datasketch import MinHash

    def with_datasketch():
        for text in texts:
            m = MinHash(num_perm=128, seed=1)
            grams = shingles(text, 5)
            if grams:
                m.update_batch([g.encode("utf-8") for g in grams])

    def with_scalelab():
        for i in range(0, len(texts), 256):
            minhash_signatures(texts[i : i + 256], num_perm=128, ngram=5, seed=1)

    size = mb(texts)
    minhash_signatures(["warm up: the word table is built once per process"], 128, 5, 1)
    ds, ours = (min((timed(fn) for _ in range(2)), key=lambda t: t[1]) for fn in (with_datasketch, with_scalelab))
    compat = timed(lambda: datasketch_signatures(texts[:200], num_perm=128, ngram=5, seed=1))
    print(f"signatures on {len(texts)} documents, {size:.1f} MB (128 permutations, word 5-grams; "
          f"kernel path {('scalar', 'AVX2', 'AVX-512')[simd_level()]}); MB per CPU second (per wall second):")
    print(f"  datasketch MinHash.update_batch: {size / ds[1]:7.2f} ({size / ds[0]:.2f}) MB/s per core")
    print(f"  scalelab signature stage:        {size / ours[1]:7.2f} ({size / ours[0]:.2f}) MB/s per core  "
          f"({ds[1] / ours[1]:.1f}x datasketch)")
    print(f"  scalelab datasketch-compatible:  {mb(texts[:200]) / compat[1]:7.2f} MB/s per core")


def perturb(text: str, copy: int) -> str:
    words = text.split()
    return " ".join(f"edit{copy}" if (i + copy) % 40 == 0 else w for i, w in enumerate(words))


def bench_steps(texts: list[str], factor: int) -> None:
    docs = [perturb(t, c) if c else t for c in range(factor) for t in texts]
    mh = MinHashConfig()
    bands, rows = N.banding_of(mh)
    nodes = np.arange(len(docs), dtype=np.int64)
    info = {"node": nodes, "id": np.array([f"{i:08d}" for i in range(len(docs))], dtype=object),
            "length": np.array([len(d) for d in docs], dtype=np.int64), "file": np.zeros(len(docs), np.int64)}
    got, timings = {}, {}

    def step(name: str, fn) -> None:
        timings[name] = timed(lambda: got.__setitem__(name, fn()))

    # In a build, sign_file hashes the shingles once for the signatures and the verification.
    step("shingle hashes", lambda: shingle_hashes(docs, mh.ngram))
    hashes, ranges = got["shingle hashes"]
    sh = {"node": nodes, "ranges": ranges, "hashes": hashes}
    step("signatures (from hashes)", lambda: signatures_of_hashes(hashes, ranges, mh.num_perm, mh.seed))
    step("banding", lambda: band_keys(got["signatures (from hashes)"], bands, rows))
    bucket = {"band": np.tile(np.arange(bands, dtype=np.int64), len(docs)),
              "key": got["banding"].ravel().view(np.int64), "node": np.repeat(nodes, bands)}
    step("pairs", lambda: N.bucket_edges(1, N.ALL_PAIRS_BUCKET, bucket)[1])
    edges = got["pairs"]
    step("verify", lambda: N.verify_edges(mh.threshold, 1, *N.send_candidates(1, 1, edges, sh), sh))
    verified = got["verify"]
    step("components + guard", lambda: cluster(mh, verified, info, sh))
    step("components (driver)", lambda: union_find(canonical(verified)))
    step("components (Ray, 4 parts)", lambda: distributed_components([verified], 4))
    stats = guard.statistics(got["components + guard"], mh.verify_component_size)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{factor}x input: {len(docs)} documents, {mb(docs):.1f} MB, {len(edges)} candidate edges, "
          f"{len(verified)} verified (bands={bands}, rows={rows}); seconds wall / CPU of this process:")
    for name, (wall, cpu) in timings.items():
        print(f"  {name:<27}{wall:8.3f} {cpu:8.3f}")
    print(f"  peak RSS so far: {rss:.0f} MB")
    print(f"  components: {stats.components} (largest {stats.largest}, sizes {stats.size_histogram}); "
          f"{stats.checked} checked against their keeper, {stats.split} split, "
          f"{stats.members_split_off} members split off, {stats.rounds} rounds")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default=str(REPO.parent / "shared" / "corpora"))
    args = ap.parse_args()
    texts = handbook_texts(Path(args.corpora), with_books=True)
    print(f"machine: {os.cpu_count()} CPU cores")
    bench_signatures(texts)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    for factor in (1, 4):
        bench_steps(texts, factor)


if __name__ == "__main__":
    main()
