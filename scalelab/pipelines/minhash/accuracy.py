"""How well the near-duplicate stage finds near-duplicates, against exact Jaccard over all pairs.

The truth is computed independently of the stage: shingles as strings (`signatures.shingles`, the
stage's shingling), a document × shingle incidence matrix, and its product with itself, which gives
every pair's intersection exactly. The stage runs in this process over one partition, through the
same functions its Ray tasks call (sign, bucket, verify, components), so figures are per core.

Scores, for a threshold t (a "true pair" has exact Jaccard >= t):
- pair recall: true pairs that end in one cluster;
- pair precision: pairs in one cluster that are true pairs (clusters are transitive, so a chain
  A~B~C puts A, C together even when J(A, C) < t);
- document recall / precision: documents with a true partner that are in a cluster, and the reverse;
- drop precision: dropped documents whose cluster's survivor is a true partner;
- residual pairs: true pairs whose documents both survive (the duplication left in the output).
  With the guard (guard.py), clusters are stars around their survivor, so a true pair can end in
  two clusters (pair recall falls) without either document surviving beside its duplicate.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.pipelines.config import MinHashConfig
from scalelab.pipelines.minhash import near_dedup as N
from scalelab.pipelines.minhash.banding import Banding
from scalelab.pipelines.minhash import guard
from scalelab.pipelines.minhash.components import canonical, union_find
from scalelab.pipelines.minhash.pair_similarity import send_firsts
from scalelab.pipelines.minhash.signatures import shingles


def jaccard_pairs(texts: Sequence[str], ngram: int) -> dict[tuple[int, int], float]:
    """{(i, j): exact Jaccard} for every pair i < j that shares a shingle."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        ids = {vocab.setdefault(s, len(vocab)) for s in shingles(text, ngram)}
        rows.extend([i] * len(ids))
        cols.extend(ids)
    m = sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(texts), max(1, len(vocab))))
    sizes = np.asarray(m.sum(axis=1)).ravel()
    inter = sparse.triu(m @ m.T, k=1).tocoo()
    jac = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    return {(int(i), int(j)): float(s) for i, j, s in zip(inter.row, inter.col, jac)}


@dataclass
class StageRun:
    """The stage's clusters ({document index: smallest index of its cluster}) and its costs."""

    labels: dict[int, int]
    candidate_pairs: int
    verified_pairs: int
    seconds: dict[str, float] = field(default_factory=dict)


def run_stage(texts: Sequence[str], mh: MinHashConfig, banding: Banding, all_pairs_up_to: int) -> StageRun:
    """Sign, bucket, verify (when mh.verify), cluster and guard (when mh.verify_component_size)
    `texts` in this process, one partition, through the functions the stage's Ray tasks run."""
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part-00000.parquet"
        # Ids that sort like the indices, so "smallest id" and "smallest index" agree.
        pq.write_table(pa.table({"id": [f"{i:08d}" for i in range(len(texts))], "text": list(texts)}), path)
        clock = time.perf_counter()
        bucket, info, *shingle = N.sign_file(str(path), 0, mh, banding.bands, banding.rows, 1)
        seconds["signatures"] = time.perf_counter() - clock
    clock = time.perf_counter()
    candidates, edges = N.bucket_edges(1, all_pairs_up_to, bucket)
    seconds["buckets"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if mh.verify:
        edges = N.verify_edges(mh.threshold, 1, *N.send_candidates(1, 1, edges, shingle[0]), shingle[0])
    seconds["verify"] = time.perf_counter() - clock
    clock = time.perf_counter()
    groups = cluster(mh, edges, info, shingle[0] if shingle else None)
    seconds["guard"] = time.perf_counter() - clock
    # Every document in a cluster of two or more, labelled by its keeper's index.
    index = {int(node): i for i, node in enumerate(info["node"])}
    keepers = [index[int(kp)] for kp in groups.keeper.tolist()]
    sizes = Counter(keepers)
    clusters = {index[int(node)]: kp for node, kp in zip(groups.node.tolist(), keepers) if sizes[kp] > 1}
    return StageRun(labels=clusters, candidate_pairs=int(candidates), verified_pairs=len(edges), seconds=seconds)


def cluster(mh: MinHashConfig, edges: np.ndarray, info: dict, shingles: dict | None) -> guard.Groups:
    """Components of the edges, then the guard's rounds (near_dedup.find_duplicates, K = 1)."""
    nodes, labels = union_find(canonical(edges))
    (members,) = N.attach_info(1, {"node": nodes, "label": labels}, info)
    min_size = mh.verify_component_size or float("inf")
    groups, proposed, pairs = N.guard_start(mh.keep, min_size, 0, 1, 1, members, edges)
    while proposed:
        (checked,) = N.check_for_homes(1, 1, *send_firsts(1, 1, pairs, shingles), shingles)
        groups, proposed, pairs = N.guard_round(min_size, mh.threshold, 0, 1, groups, checked)
    return groups


@dataclass
class Accuracy:
    true_pairs: int
    pair_recall: float
    pair_precision: float
    doc_recall: float
    doc_precision: float
    drop_precision: float
    residual_pairs: float


def score(labels: dict[int, int], truth: dict[tuple[int, int], float], threshold: float) -> Accuracy:
    """Compare the stage's clusters with exact-Jaccard truth (see the module docstring)."""
    true_pairs = {p for p, s in truth.items() if s >= threshold}
    clusters = defaultdict(list)
    for doc, label in labels.items():
        clusters[label].append(doc)
    clustered_pairs = [(a, b) for group in clusters.values() for a in group for b in group if a < b]
    true_docs = {d for p in true_pairs for d in p}
    found_docs = set(labels)
    drops = [(min(d, label), max(d, label)) for d, label in labels.items() if d != label]
    dropped = {d for d, label in labels.items() if d != label}

    def share(hits: int, total: int) -> float:
        return hits / total if total else 1.0

    return Accuracy(
        true_pairs=len(true_pairs),
        pair_recall=share(sum(labels.get(a, -1) == labels.get(b, -2) for a, b in true_pairs), len(true_pairs)),
        pair_precision=share(sum(p in true_pairs for p in clustered_pairs), len(clustered_pairs)),
        doc_recall=share(len(true_docs & found_docs), len(true_docs)),
        doc_precision=share(len(true_docs & found_docs), len(found_docs)),
        drop_precision=share(sum(p in true_pairs for p in drops), len(drops)),
        residual_pairs=sum(a not in dropped and b not in dropped for a, b in true_pairs) / max(1, len(true_pairs)),
    )
