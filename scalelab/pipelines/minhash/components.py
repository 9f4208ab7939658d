"""Connected components of the candidate-duplicate graph, without one process holding all edges.

Distributed: alternating large-star and small-star rounds (Kiveris et al., "Connected Components
in MapReduce and Beyond", 2014) as Ray tasks over K hash partitions of the edges. Each round groups
edges by node inside one partition, so a task holds about 2·E/K edges (E = edges in the graph
at that round, which never grows past the input's). Rounds: O(log² n) even for long chains, where
label propagation would need O(diameter). Converged when a round leaves the edge set unchanged,
checked by an order-independent checksum that every task returns.

Fast path: a union-find in the driver when the graph has at most `driver_max_edges` edges.

Nodes are int64. The result maps every node that has an edge to the smallest node of its component.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np


class Components(NamedTuple):
    """Every node with an edge, and its component's label (the component's smallest node)."""

    nodes: np.ndarray
    labels: np.ndarray


def union_find(edges: np.ndarray) -> Components:
    """Components of the edges, on the driver."""
    if len(edges) == 0:
        return Components(np.empty(0, np.int64), np.empty(0, np.int64))
    nodes, inverse = np.unique(edges.ravel(), return_inverse=True)
    parent = np.arange(len(nodes))
    pairs = inverse.reshape(-1, 2)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            # nodes are sorted, so the smaller index is the smaller node: it stays the root
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    roots = np.array([find(i) for i in range(len(nodes))])
    return Components(nodes, nodes[roots])


def _group_min(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each row, the minimum of `values` over the rows with the same key (keys sorted)."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    mins = np.minimum.reduceat(values, starts)
    return np.repeat(mins, np.diff(np.r_[starts, len(keys)]))


def large_star(directed: np.ndarray) -> np.ndarray:
    """Directed (u, v) rows holding every edge of each u in both directions: connect every strictly
    larger neighbour of u to the smallest node of u's closed neighbourhood."""
    order = np.lexsort((directed[:, 1], directed[:, 0]))
    src, dst = directed[order, 0], directed[order, 1]
    m = np.minimum(_group_min(src, dst), src)
    keep = dst > src
    return np.stack([dst[keep], m[keep]], axis=1)


def small_star(oriented: np.ndarray) -> np.ndarray:
    """(larger, smaller) rows holding every edge of each larger node u: connect u and its smaller
    neighbours to the smallest of them."""
    order = np.lexsort((oriented[:, 1], oriented[:, 0]))
    hi, lo = oriented[order, 0], oriented[order, 1]
    m = _group_min(hi, lo)
    out = np.concatenate([np.stack([lo, m], axis=1), np.stack([hi, m], axis=1)])
    return out[out[:, 0] != out[:, 1]]


def both_directions(edges: np.ndarray) -> np.ndarray:
    return np.concatenate([edges, edges[:, ::-1]])


def canonical(edges: np.ndarray) -> np.ndarray:
    """Undirected edges as (larger, smaller) rows, unique and sorted."""
    if len(edges) == 0:
        return edges.reshape(0, 2)
    e = np.stack([np.maximum(edges[:, 0], edges[:, 1]), np.minimum(edges[:, 0], edges[:, 1])], axis=1)
    return np.unique(e[e[:, 0] != e[:, 1]], axis=0)


def _checksum(edges: np.ndarray) -> tuple[int, int]:
    """Order-independent fingerprint of an edge set (count, xor of mixed pairs)."""
    if len(edges) == 0:
        return 0, 0
    with np.errstate(over="ignore"):
        mixed = edges[:, 0].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ edges[:, 1].astype(np.uint64)
        mixed ^= mixed >> np.uint64(29)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
    return len(edges), int(np.bitwise_xor.reduce(mixed))


def _partition_of(nodes: np.ndarray, k: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((nodes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) % np.uint64(k)


def _scatter(edges: np.ndarray, k: int, by_column: int) -> list[np.ndarray]:
    part = _partition_of(edges[:, by_column], k)
    return [edges[part == i] for i in range(k)]


def _prepare(edges: np.ndarray, step: str, k: int) -> list[np.ndarray]:
    """Lay undirected edges out for `step`, split by the partition of the node they group by."""
    rows = both_directions(edges) if step == "large" else edges  # canonical rows are (larger, smaller)
    return _scatter(rows, k, 0)


def _round_task(k: int, step: str, *pieces: np.ndarray):
    """One partition of one step: group by node, apply the star, lay the result out for the next step."""
    rows = np.concatenate(pieces) if pieces else np.empty((0, 2), np.int64)
    out = canonical((large_star if step == "large" else small_star)(rows)) if len(rows) else rows.reshape(0, 2)
    return (_checksum(out), *_prepare(out, "small" if step == "large" else "large", k))


def connected_components(edges: np.ndarray, num_partitions: int = 8, driver_max_edges: int = 100_000,
                         max_rounds: int = 200) -> Components:
    """Components of the edges: on the driver when they are few, else as Ray tasks."""
    edges = canonical(np.asarray(edges, dtype=np.int64).reshape(-1, 2))
    if len(edges) <= driver_max_edges:
        return union_find(edges)
    return distributed_components([edges], num_partitions, max_rounds)


def _first_layout(chunk: np.ndarray, k: int):
    pieces = _prepare(canonical(chunk), "large", k)
    return tuple(pieces) if k > 1 else pieces[0]


def distributed_components(edge_chunks: list, num_partitions: int, max_rounds: int = 200,
                           return_pieces: bool = False):
    """Large-star/small-star over Ray tasks. `edge_chunks`: numpy arrays or ObjectRefs of (u, v) rows.

    The edges are canonicalized per chunk, so an edge repeated across chunks is repeated in the
    first round only (each round's output is unique per partition, and each edge lives in one).
    """
    import ray

    k = max(1, num_partitions)
    round_task = ray.remote(_round_task)
    first_layout = ray.remote(_first_layout)

    pieces: list[list] = [[] for _ in range(k)]
    for chunk in edge_chunks:
        refs = first_layout.options(num_returns=k).remote(chunk, k) if k > 1 else [first_layout.remote(chunk, 1)]
        for i, r in enumerate(refs):
            pieces[i].append(r)

    previous: Optional[tuple[int, int]] = None
    for _ in range(max_rounds):
        for step in ("large", "small"):
            outs = [round_task.options(num_returns=k + 1).remote(k, step, *pieces[i]) for i in range(k)]
            checksums = ray.get([o[0] for o in outs])
            pieces = [[o[1 + j] for o in outs] for j in range(k)]
        total = (sum(c for c, _ in checksums),
                 int(np.bitwise_xor.reduce(np.array([x for _, x in checksums], dtype=np.uint64))))
        if total == previous:
            break
        previous = total
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")

    if return_pieces:
        # Per partition, refs of (u, v) rows in both directions grouped by u: each node's
        # membership can be read where the node lives, without gathering (see near_dedup.memberships).
        return pieces
    # Converged: every edge is (node, smallest node of its component); the pieces are laid out for
    # a large step, i.e. in both directions, so canonical() folds them back.
    final = canonical(np.concatenate(ray.get([p for part in pieces for p in part])))
    if len(final) == 0:
        return Components(np.empty(0, np.int64), np.empty(0, np.int64))
    roots = np.unique(final[:, 1])
    nodes = np.concatenate([final[:, 0], roots])
    labels = np.concatenate([final[:, 1], roots])
    order = np.argsort(nodes, kind="stable")
    nodes, labels = nodes[order], labels[order]
    first = np.r_[True, nodes[1:] != nodes[:-1]]
    return Components(nodes[first], labels[first])
