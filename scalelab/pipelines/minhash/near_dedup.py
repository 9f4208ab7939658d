"""Near-duplicate removal: MinHash-LSH over the staged partitions, as Ray tasks, K hash partitions wide.

    phase/exact_kept/part-P ─► sign (per file): signatures, band keys, shingles, scattered by bucket / node
                      ─► buckets (per partition): members of a bucket become edges (every pair in a
                         small bucket when verifying, consecutive members otherwise)
                      ─► verify (optional): keep edges with true Jaccard >= threshold (pair_similarity.py)
                      ─► connected components (driver union-find, or large-star/small-star on Ray)
                      ─► keepers (per home partition of components): one survivor per cluster by policy,
                         components of verify_component_size or more checked against it member by
                         member and split where they are chains (guard.py, rounds of pair checks)
                      ─► rewrite (per file): documents/part-P without the duplicates, and the accounting

Every step holds one partition of its data; only counts and the small per-partition drop lists
cross the driver (the union-find fast path takes the edges to the driver below `driver_max_edges`).
Documents are graph nodes by a 64-bit hash of their id: ids must be unique within a build.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass, field
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
from scalelab.pipelines.minhash import guard
from scalelab.pipelines.minhash.pair_similarity import Pairs, PairsWithFirsts, Similarities, send_firsts, similarities
from scalelab.pipelines.minhash.signatures import shingle_hashes, signatures_of_hashes

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
    components: dict = field(default_factory=dict)  # guard.ComponentStats as a dict
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


# ------------------------------------------------------------------------------ 1. sign
def sign_file(path: str, file_index: int, mh: MinHashConfig, bands: int, rows: int, k: int):
    """Returns k bucket pieces (band, key, node), k info pieces (node, id, length, file), and,
    when verifying or guarding, k shingle pieces (node, ranges into hashes, hashes), each split by partition."""
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
    if mh.verify or mh.verify_component_size is not None:
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
def send_candidates(k: int, num_edge_pieces: int, *pieces) -> tuple[PairsWithFirsts, ...]:
    """Candidate edges whose first node lives here, each once (a pair found in several bands'
    buckets arrives several times), on to their second node's partition with the first's shingles.
    `pieces`: this partition's edge pieces, then its shingle pieces."""
    edges = canonical(np.concatenate(pieces[:num_edge_pieces])) if num_edge_pieces else np.empty((0, 2), np.int64)
    pairs = Pairs(edges[:, 0], edges[:, 1], np.zeros(len(edges), np.int64))
    return send_firsts(k, 1, pairs, *pieces[num_edge_pieces:])


def verify_edges(threshold: float, num_received: int, *pieces) -> np.ndarray:
    """The candidate edges sent here whose exact Jaccard of shingle sets reaches the threshold.
    `pieces`: the PairsWithFirsts sent to this partition, then its shingle pieces."""
    checked = similarities(num_received, *pieces)
    keep = checked.jaccard >= threshold
    return np.stack([checked.pairs.first[keep], checked.pairs.second[keep]], axis=1).reshape(-1, 2)


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


def edges_home(k: int, membership: dict[str, np.ndarray], edges: np.ndarray) -> tuple[np.ndarray, ...]:
    """Edges with a node in this partition, sent to their component's home (its label's partition)."""
    node, label = membership.get("node", np.empty(0, np.int64)), membership.get("label", np.empty(0, np.int64))
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    if len(node) == 0 or len(edges) == 0:
        return tuple(np.empty((0, 2), np.int64) for _ in range(k))
    pos = np.minimum(np.searchsorted(node, edges), len(node) - 1)
    here = node[pos] == edges
    # Both ends are in one component: either end that lives here gives its label.
    edge_label = np.where(here[:, 0], label[pos[:, 0]], label[pos[:, 1]])
    edges, edge_label = edges[here.any(axis=1)], edge_label[here.any(axis=1)]
    part = _partition_of(edge_label, k)
    return tuple(edges[part == i] for i in range(k))


def guard_start(policy: str, min_size: float, home: int, k: int, num_member_pieces: int, *pieces):
    """A home partition's components, from its member pieces and edge pieces: the first round's
    checks. Returns (Groups, number of pairs to check, k Pairs pieces by the keepers' partition)."""
    members = _concat(pieces[:num_member_pieces])
    edge_pieces = [e for e in pieces[num_member_pieces:] if len(e)]
    edges = canonical(np.concatenate(edge_pieces)) if edge_pieces else np.empty((0, 2), np.int64)
    groups = guard.start(policy, members, edges)
    return _proposed(groups, min_size, home, k)


def guard_round(min_size: float, threshold: float, home: int, k: int, groups: guard.Groups, *checked: Similarities):
    """Apply a round's checks to a home's groups, then propose the next round's."""
    groups = groups.writable()
    guard.apply(groups, list(checked), threshold)
    return _proposed(groups, min_size, home, k)


def _proposed(groups: guard.Groups, min_size: float, home: int, k: int):
    pairs = guard.propose(groups, min_size, home)
    return (groups, len(pairs), *pairs.split(_partition_of(pairs.first, k), k))


def check_for_homes(k: int, num_received: int, *pieces) -> tuple[Similarities, ...]:
    """The pairs sent here checked, and split by the home partition they came from (their tag)."""
    checked = similarities(num_received, *pieces)
    return tuple(Similarities(checked.pairs.take(checked.pairs.tag == h), checked.jaccard[checked.pairs.tag == h])
                 for h in range(k))


def guard_result(min_size: float, groups: guard.Groups) -> tuple[pa.Table, guard.ComponentStats]:
    return guard.drops(groups), guard.statistics(groups, min_size)


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
                             clusters=figures["clusters"], components=figures.get("components", {}),
                             seconds=dict(figures["seconds"]), resumed_units=resumed)
    result.seconds["rewrite"] = time.perf_counter() - clock
    return result


class NearDuplicates(NamedTuple):
    """What near_find hands on: the documents to drop and the phase's figures."""

    table: pa.Table   # id, cluster_id, file of each near-duplicate to drop
    figures: dict     # banding, counts and seconds per step, for the build's stats


def _one_or_many(fn):
    """A task returning a tuple of one returns its element: with num_returns=1, Ray would hand on the tuple."""
    @functools.wraps(fn)
    def call(*args):
        out = fn(*args)
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    return call


MIN_AUTO_PARTITIONS = 4


def find_duplicates(cfg: CorpusConfig, files: list[Location]) -> NearDuplicates:
    """Signatures, buckets, verification, components and the guarded keepers as Ray tasks: the
    table of near-duplicates to drop (id, cluster_id, file) and the phase's figures."""
    mh = cfg.dedup.minhash
    k = max(MIN_AUTO_PARTITIONS, len(files)) if mh.num_partitions == "auto" else mh.num_partitions
    bands, rows = banding_of(mh)
    figures: dict = {"bands": bands, "rows": rows, "seconds": {}}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        figures["seconds"][name] = now - clock
        clock = now

    remote = {fn.__name__: ray.remote(max_retries=3)(_one_or_many(fn))
              for fn in (sign_file, bucket_edges, send_candidates, verify_edges, memberships, attach_info,
                         edges_home, guard_start, send_firsts, guard_round, check_for_homes, guard_result)}
    concat_edges = ray.remote(lambda *p: np.concatenate(p))
    count = ray.remote(lambda edges: len(edges))

    def call(name: str, n: int, *args) -> list:
        refs = remote[name].options(num_returns=n).remote(*args)
        return refs if n > 1 else [refs]

    shingles_needed = mh.verify or mh.verify_component_size is not None
    per_file = 3 * k if shingles_needed else 2 * k
    signed = [call("sign_file", per_file, str(f), i, mh, bands, rows, k) for i, f in enumerate(files)]
    bucket_in = [[s[j] for s in signed] for j in range(k)]
    info_in = [[s[k + j] for s in signed] for j in range(k)]
    shingle_in = [[s[2 * k + j] for s in signed] for j in range(k)] if shingles_needed else None
    ray.wait([s[0] for s in signed], num_returns=len(signed))
    lap("signatures")

    all_pairs = ALL_PAIRS_BUCKET if mh.verify else 1  # unverified, consecutive links give the same components
    bucketed = [call("bucket_edges", k + 1, k, all_pairs, *bucket_in[j]) for j in range(k)]
    figures["candidate_edges"] = sum(ray.get([b[0] for b in bucketed]))
    edges_by_first = [[b[1 + j] for b in bucketed] for j in range(k)]
    lap("buckets")

    if mh.verify:
        sent = [call("send_candidates", k, k, len(edges_by_first[j]), *edges_by_first[j], *shingle_in[j])
                for j in range(k)]
        edge_chunks = [remote["verify_edges"].remote(mh.threshold, k, *[s[j] for s in sent], *shingle_in[j])
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

    # Each component's members and edges meet at its home partition; the guard splits the
    # components that are not clusters (guard.py), in rounds of checks against the keepers.
    joined = [call("attach_info", k, k, member_refs[j], *info_in[j]) for j in range(k)]
    homed_edges = [call("edges_home", k, k, member_refs[j], edge_chunks[j]) for j in range(k)]
    min_size = mh.verify_component_size or float("inf")
    state = [call("guard_start", k + 2, mh.keep, min_size, h, k, k, *[jn[h] for jn in joined],
                  *[e[h] for e in homed_edges]) for h in range(k)]
    while sum(ray.get([s[1] for s in state])):
        sent = [call("send_firsts", k, k, k, *[s[2 + j] for s in state], *shingle_in[j]) for j in range(k)]
        checked = [call("check_for_homes", k, k, k, *[s[i] for s in sent], *shingle_in[i]) for i in range(k)]
        state = [call("guard_round", k + 2, min_size, mh.threshold, h, k, state[h][0], *[c[h] for c in checked])
                 for h in range(k)]
    results = ray.get([remote["guard_result"].remote(min_size, s[0]) for s in state])
    duplicates = pa.concat_tables([r[0] for r in results]).combine_chunks()
    duplicates = duplicates.take(pc.sort_indices(duplicates, sort_keys=[("file", "ascending"), ("id", "ascending")]))
    figures["duplicates"] = duplicates.num_rows
    figures["clusters"] = len(set(duplicates["cluster_id"].to_pylist()))
    figures["components"] = asdict(guard.ComponentStats.merge([r[1] for r in results]))
    lap("keepers")
    return NearDuplicates(duplicates, figures)
