"""Near-duplicate removal: MinHash-LSH over the staged partitions, as Ray tasks, K hash partitions wide.

    phase/exact_kept/part-P ─► sign (per file): signatures, band keys, shingles, scattered by bucket / node
                      ─► buckets (per partition): members of a bucket become edges (every pair in a
                         small bucket when verifying, consecutive members otherwise)
                      ─► verify (optional): attach both documents' shingles, keep edges with true
                         Jaccard >= threshold
                      ─► connected components (driver union-find, or large-star/small-star on Ray)
                      ─► keepers (per partition of cluster labels): one survivor per cluster by policy
                      ─► rewrite (per file): documents/part-P without the duplicates, and the accounting

Every step holds one partition of its data; only counts and the small per-partition drop lists
cross the driver (the union-find fast path takes the edges to the driver below `driver_max_edges`).
Documents are graph nodes by a 64-bit hash of their id: ids must be unique within a build.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from scalelab.core.atomic import write_parquet
from scalelab.core.build_units import Phase, run_units
from scalelab.core.storage import Location, read_parquet
from scalelab.pipelines.fault_hooks import maybe_fail
from scalelab.pipelines.partition_writer import kept_stat_rows, partition_file, write_documents, write_rejected
from scalelab.pipelines.stats import StatRow, stat_rows
from scalelab.pipelines.build_outputs import is_build_file
from scalelab.pipelines.config import CorpusConfig, MinHashConfig
from scalelab.pipelines.minhash.banding import Banding, band_keys, bands_for_recall, choose_bands
from scalelab.pipelines.minhash.components import (
    _partition_of,
    canonical,
    distributed_components,
    union_find,
)
from scalelab.pipelines.minhash.signatures import Shingles, shingle_hashes, signatures_of_hashes

STAGE = "near_dedup"
REASON = "near_duplicate"
STAGED_FOLDER = "phase/exact_kept"
# With verification, buckets up to this size give every pair: linking only consecutive members
# would let one dissimilar member in between fail both its checks and hide a true pair.
# Larger buckets stay linear (consecutive members), so a huge bucket cannot blow up.
ALL_PAIRS_BUCKET = 32


@dataclass
class NearDedupResult:
    stat_rows: pa.Table
    bands: int
    rows: int
    candidate_edges: int = 0
    verified_edges: int = 0
    duplicates: int = 0
    clusters: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    resumed_units: dict[str, int] = field(default_factory=dict)


def banding_of(mh: MinHashConfig) -> Banding:
    """The configured (bands, rows), else recall-first when verifying, else datasketch's balance."""
    if mh.bands:
        return Banding(mh.bands, mh.rows)
    if mh.verify:
        return bands_for_recall(mh.threshold, mh.num_perm, mh.recall_at_threshold)
    return choose_bands(mh.threshold, mh.num_perm)


def nodes_of(ids: list[str]) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big", signed=True)
                     for i in ids], dtype=np.int64)


def _split(values: dict[str, np.ndarray], part: np.ndarray, k: int) -> list[dict[str, np.ndarray]]:
    return [{name: v[part == i] for name, v in values.items()} for i in range(k)]


def _concat(pieces: tuple[dict[str, np.ndarray], ...]) -> dict[str, np.ndarray]:
    pieces = [p for p in pieces if p]
    if not pieces:
        return {}
    return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}


def _concat_shingles(pieces: tuple[dict[str, np.ndarray], ...]) -> dict[str, np.ndarray]:
    """Merge (node, ranges, hashes) pieces: each piece's ranges start at 0, so shift them."""
    pieces = [p for p in pieces if p and len(p["node"])]
    if not pieces:
        return {"node": np.empty(0, np.int64), "ranges": np.zeros(1, np.int64), "hashes": np.empty(0, np.uint64)}
    ranges, base = [np.zeros(1, np.int64)], 0
    for p in pieces:
        ranges.append(p["ranges"][1:] + base)
        base += int(p["ranges"][-1])
    return {"node": np.concatenate([p["node"] for p in pieces]), "ranges": np.concatenate(ranges),
            "hashes": np.concatenate([p["hashes"] for p in pieces])}


# ------------------------------------------------------------------------------ 1. sign
def sign_file(path: str, file_index: int, mh: MinHashConfig, bands: int, rows: int, k: int):
    """Returns k bucket pieces (band, key, node), k info pieces (node, id, length, file), and,
    when verifying, k shingle pieces (node, ranges into hashes, hashes), each split by partition."""
    table = read_parquet(Location.of(path), columns=["id", "text"])
    ids = table["id"].to_pylist()
    texts = table["text"].to_pylist()
    nodes = nodes_of(ids)
    hashes, ranges = shingle_hashes(texts, mh.ngram)  # once: the signatures and the verification share them
    sigs = signatures_of_hashes(hashes, ranges, mh.num_perm, mh.seed)
    keys = band_keys(sigs, bands, rows)
    has_words = sigs[:, 0] != np.uint64((1 << 61) - 1)  # texts with no words are no one's duplicate
    band_col = np.tile(np.arange(bands, dtype=np.int64), len(ids))
    bucket = {"band": band_col, "key": keys.ravel().view(np.int64), "node": np.repeat(nodes, bands)}
    bucket = {n: v[np.repeat(has_words, bands)] for n, v in bucket.items()}
    with np.errstate(over="ignore"):
        bucket_part = ((bucket["key"].view(np.uint64) ^ bucket["band"].astype(np.uint64)) % np.uint64(k)).astype(np.int64)
    info = {"node": nodes, "id": np.array(ids, dtype=object),
            "length": np.array([len(t) for t in texts], dtype=np.int64),
            "file": np.full(len(ids), file_index, dtype=np.int64)}
    node_part = _partition_of(nodes, k).astype(np.int64)
    out = [*_split(bucket, bucket_part, k), *_split(info, node_part, k)]
    if mh.verify:
        for i in range(k):
            members = np.flatnonzero(node_part == i)
            counts = np.diff(ranges)[members]
            out.append({"node": nodes[members],
                        "ranges": np.r_[0, np.cumsum(counts)].astype(np.int64),
                        "hashes": (np.concatenate([hashes[ranges[m]:ranges[m + 1]] for m in members])
                                   if len(members) else np.empty(0, np.uint64))})
    return tuple(out)


# ------------------------------------------------------------------------------ 2. buckets
def _bucket_pairs(band: np.ndarray, key: np.ndarray, node: np.ndarray, all_pairs_up_to: int) -> np.ndarray:
    """Edges inside each bucket (rows sorted by band, key): every pair of a bucket of at most
    `all_pairs_up_to` members, consecutive members of a larger one."""
    starts = np.flatnonzero(np.r_[True, (band[1:] != band[:-1]) | (key[1:] != key[:-1])])
    sizes = np.diff(np.r_[starts, len(node)])
    small = np.repeat(sizes <= all_pairs_up_to, sizes)
    pairs = []
    for d in range(1, max(2, min(all_pairs_up_to, int(sizes.max())))):  # d: distance inside the bucket
        same = (band[d:] == band[:-d]) & (key[d:] == key[:-d])
        if d > 1:
            same &= small[d:]
        pairs.append(np.stack([node[d:][same], node[:-d][same]], axis=1))
    return np.concatenate(pairs)


def bucket_edges(k: int, all_pairs_up_to: int, *pieces: dict[str, np.ndarray]):
    """Link the members of each bucket (see `_bucket_pairs`; 1 links consecutive members only).
    Returns (number of edges, k pieces of canonical edges split by their first node's partition)."""
    b = _concat(pieces)
    if not b or len(b["node"]) == 0:
        return (0, *[np.empty((0, 2), np.int64) for _ in range(k)])
    order = np.lexsort((b["node"], b["key"], b["band"]))
    edges = canonical(_bucket_pairs(b["band"][order], b["key"][order], b["node"][order], all_pairs_up_to))
    part = _partition_of(edges[:, 0], k) if len(edges) else np.empty(0)
    return (len(edges), *[edges[part == i] for i in range(k)])


# ------------------------------------------------------------------------------ 3. verify
def _lookup(shingles: dict[str, np.ndarray], wanted: np.ndarray) -> Shingles:
    """The shingle hashes of the `wanted` nodes."""
    order = np.argsort(shingles["node"])
    pos = order[np.searchsorted(shingles["node"], wanted, sorter=order)]
    starts, ends = shingles["ranges"][pos], shingles["ranges"][pos + 1]
    hashes = (np.concatenate([shingles["hashes"][s:e] for s, e in zip(starts, ends)])
              if len(wanted) else np.empty(0, np.uint64))
    return Shingles(hashes, np.r_[0, np.cumsum(ends - starts)].astype(np.int64))


def attach_first(k: int, num_edge_pieces: int, *pieces):
    """Edges whose first node lives here get that node's shingles; then they move to the second's.
    `pieces`: the edge pieces of this partition, then its shingle pieces."""
    edge_pieces, shingle_pieces = pieces[:num_edge_pieces], pieces[num_edge_pieces:]
    # One pair found in several bands' buckets is checked once.
    edges = canonical(np.concatenate(edge_pieces)) if edge_pieces else np.empty((0, 2), np.int64)
    shingles = _concat_shingles(shingle_pieces)
    hashes, ranges = _lookup(shingles, edges[:, 0]) if len(edges) else (np.empty(0, np.uint64), np.zeros(1, np.int64))
    part = _partition_of(edges[:, 1], k) if len(edges) else np.empty(0)
    out = []
    for i in range(k):
        rows = np.flatnonzero(part == i)
        counts = (ranges[rows + 1] - ranges[rows]) if len(rows) else np.empty(0, np.int64)
        out.append({"edges": edges[rows], "ranges": np.r_[0, np.cumsum(counts)].astype(np.int64),
                    "hashes": np.concatenate([hashes[ranges[r]:ranges[r + 1]] for r in rows]) if len(rows)
                    else np.empty(0, np.uint64)})
    return tuple(out)


def verify_edges(threshold: float, num_attached: int, *pieces) -> np.ndarray:
    """Keep the edges whose true Jaccard similarity of shingle sets reaches the threshold.
    `pieces`: the attached-edge pieces sent to this partition, then its shingle pieces."""
    attached, shingle_pieces = pieces[:num_attached], pieces[num_attached:]
    shingles = _concat_shingles(shingle_pieces)
    kept = []
    for piece in attached:
        edges = piece["edges"]
        if len(edges) == 0:
            continue
        second, second_ranges = _lookup(shingles, edges[:, 1])
        for r in range(len(edges)):
            a = np.unique(piece["hashes"][piece["ranges"][r]:piece["ranges"][r + 1]])
            b = np.unique(second[second_ranges[r]:second_ranges[r + 1]])
            inter = len(np.intersect1d(a, b, assume_unique=True))
            union = len(a) + len(b) - inter
            if union and inter / union >= threshold:
                kept.append(edges[r])
    return np.array(kept, dtype=np.int64).reshape(-1, 2)


# ------------------------------------------------------------------------------ 5. keepers
def memberships(*pieces: np.ndarray) -> dict[str, np.ndarray]:
    """From converged large-step pieces of one partition: (node, label) for the nodes it owns."""
    rows = np.concatenate(pieces) if pieces else np.empty((0, 2), np.int64)
    members = rows[rows[:, 0] > rows[:, 1]]
    roots = np.unique(rows[rows[:, 0] < rows[:, 1], 0])
    node = np.concatenate([members[:, 0], roots])
    label = np.concatenate([members[:, 1], roots])
    node, first = np.unique(node, return_index=True)
    return {"node": node, "label": label[first]}


def attach_info(k: int, membership: dict[str, np.ndarray], *info_pieces: dict[str, np.ndarray]):
    """Join (node, label) with (id, length, file), then send rows to their label's partition."""
    info = _concat(info_pieces)
    if not membership or len(membership["node"]) == 0:
        return tuple({} for _ in range(k))
    order = np.argsort(info["node"])
    pos = order[np.searchsorted(info["node"], membership["node"], sorter=order)]
    rows = {"label": membership["label"], "node": membership["node"], "id": info["id"][pos],
            "length": info["length"][pos], "file": info["file"][pos]}
    return tuple(_split(rows, _partition_of(rows["label"], k).astype(np.int64), k))


def choose_keepers(policy: str, *pieces: dict[str, np.ndarray]) -> pa.Table:
    """One survivor per cluster; the others become drops (file, id, cluster_id = the survivor's id)."""
    rows = _concat(pieces)
    if not rows or len(rows["label"]) == 0:
        return pa.table({"file": pa.array([], pa.int64()), "id": pa.array([], pa.string()),
                         "cluster_id": pa.array([], pa.string())})
    ids = rows["id"].astype(str)
    # Sort within clusters so the survivor comes first: smallest id, or longest then smallest id.
    secondary = -rows["length"] if policy == "longest" else np.zeros(len(ids), np.int64)
    order = np.lexsort((ids, secondary, rows["label"]))
    label, ids_sorted, files = rows["label"][order], ids[order], rows["file"][order]
    first = np.r_[True, label[1:] != label[:-1]]
    keeper_of = np.maximum.accumulate(np.where(first, np.arange(len(label)), 0))
    dup = ~first
    return pa.table({"file": files[dup], "id": ids_sorted[dup].tolist(),
                     "cluster_id": ids_sorted[keeper_of[dup]].tolist()})


# ------------------------------------------------------------------------------ 6. rewrite
def rewrite_unit(unit: dict, out_dir: str, cfg_json: str, duplicates_path: str) -> int:
    """One staged file without its near-duplicates, written to documents/; its accounting and done
    record saved (a unit of the `near_rewrite` phase)."""

    phase = Phase(out_dir, "near_rewrite")
    phase.mark_started(unit["name"])
    maybe_fail("near_rewrite", unit["name"])
    # Only this file's duplicates are read (a filter on the sorted `file` column).
    rows = rewrite_file(unit["path"], out_dir, cfg_json,
                        read_parquet(Location.of(duplicates_path), filters=[("file", "=", unit["file_index"])]))
    phase.finish(unit["name"], rows)
    return rows.num_rows


def rewrite_file(path: str, out_dir: str, cfg_json: str, drops: pa.Table) -> pa.Table:
    """The staged file at `path` without `drops` (its near-duplicates): documents, rejected, accounting."""

    cfg = CorpusConfig.model_validate_json(cfg_json)
    staged = read_parquet(Location.of(path))
    is_dup = pc.is_in(staged["id"], value_set=drops["id"])
    kept, dups = staged.filter(pc.invert(is_dup)), staged.filter(is_dup)
    partition = int(Path(path).stem.split("-")[1])
    if kept.num_rows:
        write_documents(kept, partition_file(out_dir, "documents", partition), cfg.output.compression)
    rows = kept_stat_rows(kept)
    if dups.num_rows:
        rows.append(StatRow("drop", STAGE, REASON, dups.num_rows, int(pc.sum(dups["raw_bytes"]).as_py() or 0)))
        if cfg.output.write_rejected:
            cluster = dict(zip(drops["id"].to_pylist(), drops["cluster_id"].to_pylist()))
            n = dups.num_rows
            rejected = dups.append_column("drop_stage", pa.array([STAGE] * n)).append_column(
                "drop_reason", pa.array([REASON] * n)).append_column("drop_detail", pa.nulls(n, pa.string())).append_column(
                "cluster_id", pa.array([cluster[i] for i in dups["id"].to_pylist()], pa.string()))
            rejected = rejected.take(pc.sort_indices(rejected, sort_keys=[("id", "ascending")]))
            write_rejected(rejected, Location.of(out_dir) / "rejected" / f"near-{partition:05d}.parquet",
                           cfg.output.compression)
    return stat_rows(rows)


# ------------------------------------------------------------------------------ the phases
def run_near_dedup(cfg: CorpusConfig, out_dir: str | Path | Location, log=lambda msg: None) -> NearDedupResult:
    """Two checkpointed phases: `near_find` (one unit: signatures to the duplicates and their
    clusters, saved as one table) and `near_rewrite` (one unit per staged file)."""

    out = Location.of(out_dir)
    files = sorted(p for p in (out / STAGED_FOLDER).glob("part-*.parquet") if is_build_file(STAGED_FOLDER, p.name))
    find = Phase(out, "near_find")
    find.ensure_plan(lambda: {"units": [{"name": "graph"}]})
    resumed = {"near_find": int(find.complete())}
    if find.complete():
        log("near_find: already done, skipped")
        figures = find.done_record("graph")["figures"]
    else:
        find.mark_started("graph")
        duplicates, figures = find_duplicates(cfg, files)
        write_parquet(find.output("graph"), duplicates)
        find.finish("graph", figures=figures)
    rewrite = Phase(out, "near_rewrite")
    rewrite.ensure_plan(lambda: {"units": [{"name": f.stem, "path": str(f.resolve()), "file_index": i}
                                           for i, f in enumerate(files)]})
    task = ray.remote(max_retries=3)(rewrite_unit)
    cfg_json = cfg.model_dump_json()
    dup_path = str(find.output("graph").resolve())
    clock = time.perf_counter()
    resumed["near_rewrite"] = run_units(rewrite, lambda u: task.remote(u, str(out.resolve()), cfg_json, dup_path), log)
    tables = rewrite.stat_rows(rewrite.units())
    result = NearDedupResult(stat_rows=pa.concat_tables(tables) if tables else pa.table({}),
                             bands=figures["bands"], rows=figures["rows"], candidate_edges=figures["candidate_edges"],
                             verified_edges=figures["verified_edges"], duplicates=figures["duplicates"],
                             clusters=figures["clusters"], seconds=dict(figures["seconds"]), resumed_units=resumed)
    result.seconds["rewrite"] = time.perf_counter() - clock
    return result


class NearDuplicates(NamedTuple):
    """What near_find hands on: the documents to drop and the phase's figures."""

    table: pa.Table   # id, cluster_id, file of each near-duplicate to drop
    figures: dict     # banding, counts and seconds per step, for the build's stats


def find_duplicates(cfg: CorpusConfig, files: list[Location]) -> NearDuplicates:
    """Signatures, buckets, verification, components and keepers as Ray tasks: the table of
    near-duplicates to drop (id, cluster_id, file) and the phase's figures."""
    mh = cfg.dedup.minhash
    k = mh.num_partitions
    bands, rows = banding_of(mh)
    figures: dict = {"bands": bands, "rows": rows, "seconds": {}}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        figures["seconds"][name] = now - clock
        clock = now

    remote = {fn.__name__: ray.remote(max_retries=3)(fn)
              for fn in (sign_file, bucket_edges, attach_first, verify_edges, memberships, attach_info, choose_keepers)}
    concat_edges = ray.remote(lambda *p: np.concatenate(p))
    count = ray.remote(lambda edges: len(edges))

    def returns(n: int, refs):  # a task with num_returns=1 gives a ref, not a list of one
        return refs if n > 1 else [refs]

    per_file = 3 * k if mh.verify else 2 * k
    signed = [returns(per_file, remote["sign_file"].options(num_returns=per_file).remote(str(f), i, mh, bands, rows, k))
              for i, f in enumerate(files)]
    bucket_in = [[s[j] for s in signed] for j in range(k)]
    info_in = [[s[k + j] for s in signed] for j in range(k)]
    shingle_in = [[s[2 * k + j] for s in signed] for j in range(k)] if mh.verify else None
    ray.wait([s[0] for s in signed], num_returns=len(signed))
    lap("signatures")

    all_pairs = ALL_PAIRS_BUCKET if mh.verify else 1  # unverified, consecutive links give the same components
    bucketed = [remote["bucket_edges"].options(num_returns=k + 1).remote(k, all_pairs, *bucket_in[j])
                for j in range(k)]
    figures["candidate_edges"] = sum(ray.get([b[0] for b in bucketed]))
    edges_by_first = [[b[1 + j] for b in bucketed] for j in range(k)]
    lap("buckets")

    if mh.verify:
        attached = [returns(k, remote["attach_first"].options(num_returns=k).remote(
            k, len(edges_by_first[j]), *edges_by_first[j], *shingle_in[j])) for j in range(k)]
        edge_chunks = [remote["verify_edges"].remote(mh.threshold, len(attached), *[a[j] for a in attached], *shingle_in[j])
                       for j in range(k)]
    else:
        edge_chunks = [concat_edges.remote(*edges_by_first[j]) for j in range(k)]
    figures["verified_edges"] = sum(ray.get([count.remote(c) for c in edge_chunks]))
    lap("verify")

    # Connected components: the driver fast path, else large-star/small-star across the cluster.
    if figures["verified_edges"] <= mh.driver_max_edges:
        all_edges = np.concatenate(ray.get(edge_chunks)) if edge_chunks else np.empty((0, 2), np.int64)
        nodes, labels = union_find(canonical(all_edges))
        part = _partition_of(nodes, k).astype(np.int64)
        member_refs = [ray.put({"node": nodes[part == j], "label": labels[part == j]}) for j in range(k)]
    else:
        pieces = distributed_components(edge_chunks, k, return_pieces=True)
        member_refs = [remote["memberships"].remote(*pieces[j]) for j in range(k)]
    lap("components")

    joined = [returns(k, remote["attach_info"].options(num_returns=k).remote(k, member_refs[j], *info_in[j]))
              for j in range(k)]
    keeper_tables = ray.get([remote["choose_keepers"].remote(mh.keep, *[jn[j] for jn in joined]) for j in range(k)])
    duplicates = pa.concat_tables(keeper_tables).combine_chunks()
    duplicates = duplicates.take(pc.sort_indices(duplicates, sort_keys=[("file", "ascending"), ("id", "ascending")]))
    figures["duplicates"] = duplicates.num_rows
    figures["clusters"] = len(set(duplicates["cluster_id"].to_pylist()))
    lap("keepers")
    return NearDuplicates(duplicates, figures)
