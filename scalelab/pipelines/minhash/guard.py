"""The guarded tail of near-dedup: every member of a cluster is a near-duplicate of the document kept.

Connected components of verified pairs are transitive: a chain A~B~C~D of pairs, each above the
threshold, joins A and D however unlike they are (Marin saw one component take 859,091 of 859,092
documents). So a component of at least `min_size` members is checked against its keeper, in rounds:

  1. Each open group of at least `min_size` members takes its keeper (the survivor by the keep
     policy) and checks every other member against it: exact Jaccard of shingles >= threshold.
  2. The keeper and the members that pass are a cluster, closed. Those that fail lose their links
     to it; the verified pairs among them split them into new groups (union-find), which go back
     to 1. A member left without a pair stands alone. A group under `min_size` closes as it is
     (with verification on, a group of two is one verified pair).

A true cluster passes whole in the first round; a chain A-B-C-D-E becomes {A, B}, {C, D}, {E}.
Each round checks each open member once. A long chain sheds only a couple of members per round,
so the groups still open after GREEDY_AFTER rounds are anchored greedily instead: in keep order,
each unclaimed member anchors itself and claims its unclaimed neighbours, which are checked
against it; a member that fails stands alone. That bounds the checks at GREEDY_AFTER + 1 per
member, linear in the members.

Each home partition (the components whose label hashes to it) holds its members and their pairs;
the checks run as pair_similarity tasks. Every choice depends only on a group's members, pairs,
ids and lengths, so the clusters are the same for any partitioning or task order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from scalelab.pipelines.minhash.components import _partition_of, union_find
from scalelab.pipelines.minhash.pair_similarity import Pairs, Similarities

GREEDY_AFTER = 8  # rounds of whole-group checks before the greedy anchoring


@dataclass
class ComponentStats:
    """Sizes of the connected components and what the guard did to them (the build's summary)."""

    components: int = 0
    largest: int = 0
    members: int = 0
    size_histogram: dict[str, int] = field(default_factory=dict)  # "2", "3-4", "5-8", ... -> components
    checked: int = 0            # components of at least min_size members, checked against their keeper
    split: int = 0              # components that ended as more than one cluster (or lone documents)
    members_split_off: int = 0  # members not in the cluster of their component's keeper
    rounds: int = 0             # check rounds the largest split needed

    @staticmethod
    def merge(parts: list["ComponentStats"]) -> "ComponentStats":
        total = ComponentStats()
        for p in parts:
            total.components += p.components
            total.largest = max(total.largest, p.largest)
            total.members += p.members
            for key, n in p.size_histogram.items():
                total.size_histogram[key] = total.size_histogram.get(key, 0) + n
            total.checked += p.checked
            total.split += p.split
            total.members_split_off += p.members_split_off
            total.rounds = max(total.rounds, p.rounds)
        total.size_histogram = dict(sorted(total.size_histogram.items(), key=lambda kv: int(kv[0].split("-")[-1])))
        return total


def size_bin(size: int) -> str:
    """The power-of-two bin of a component size: 2, 3-4, 5-8, 9-16, ..."""
    upper = 1 << max(1, (size - 1).bit_length())
    return str(upper) if upper == 2 else f"{upper // 2 + 1}-{upper}"


@dataclass
class Groups:
    """One home partition's component members and where the guard has put them.

    `group`: the member's current group (a node of it); `keeper`: its cluster's keeper once
    `closed`; `edges`: the verified pairs among open members of the same group; `rank`: keep
    order (0 is kept first)."""

    node: np.ndarray
    id: np.ndarray
    file: np.ndarray
    rank: np.ndarray
    component: np.ndarray
    group: np.ndarray
    keeper: np.ndarray
    closed: np.ndarray
    edges: np.ndarray
    rounds: int = 0

    def writable(self) -> "Groups":
        """A copy to change (arrays from Ray's object store are read-only)."""
        return Groups(**{name: (value.copy() if isinstance(value, np.ndarray) else value)
                         for name, value in vars(self).items()})


def start(policy: str, members: dict[str, np.ndarray], edges: np.ndarray) -> Groups:
    """`members`: label, node, id, length, file of every member of this home's components;
    `edges`: their verified pairs."""
    if not members or len(members["node"]) == 0:
        empty = np.empty(0, np.int64)
        return Groups(empty, np.empty(0, object), empty, empty, empty, empty, empty, np.empty(0, bool),
                      np.empty((0, 2), np.int64))
    ids = members["id"].astype(str)
    secondary = -members["length"] if policy == "longest" else np.zeros(len(ids), np.int64)
    rank = np.empty(len(ids), np.int64)
    rank[np.lexsort((ids, secondary))] = np.arange(len(ids))
    order = np.argsort(members["node"])  # sorted by node: lookups by searchsorted
    return Groups(node=members["node"][order], id=ids[order], file=members["file"][order], rank=rank[order],
                  component=members["label"][order], group=members["label"][order],
                  keeper=members["node"][order].copy(), closed=np.zeros(len(ids), bool),
                  edges=np.asarray(edges, np.int64).reshape(-1, 2))


def _rows(g: Groups, nodes: np.ndarray) -> np.ndarray:
    return np.searchsorted(g.node, nodes)


def _best_of_groups(g: Groups, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the members `rows`: (group sizes, row of each member's group's best-ranked member)."""
    order = rows[np.lexsort((g.rank[rows], g.group[rows]))]
    first = np.r_[True, g.group[order][1:] != g.group[order][:-1]]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.r_[starts, len(order)])
    best = np.repeat(order[starts], sizes)
    size_of = np.repeat(sizes, sizes)
    out_best, out_size = np.empty(len(g.node), np.int64), np.zeros(len(g.node), np.int64)
    out_best[order], out_size[order] = best, size_of
    return out_size[rows], out_best[rows]


def propose(g: Groups, min_size: int, home: int) -> Pairs:
    """Close the open groups under min_size; for the others, the (keeper, member) pairs to check.
    After GREEDY_AFTER rounds, greedy anchors instead of one keeper per group."""
    rows = np.flatnonzero(~g.closed)
    if len(rows) == 0:
        return Pairs.empty()
    sizes, best = _best_of_groups(g, rows)
    small = sizes < min_size
    g.keeper[rows[small]] = g.node[best[small]]
    g.closed[rows[small]] = True
    rows, best = rows[~small], best[~small]
    if len(rows) == 0:
        return Pairs.empty()
    g.rounds += 1
    anchor = _greedy_anchors(g, rows) if g.rounds > GREEDY_AFTER else best
    check = anchor != rows
    g.keeper[rows] = g.node[anchor]        # proposed; final once the check passes
    g.closed[rows[~check]] = True          # the anchors themselves
    members = rows[check]
    return Pairs(first=g.node[anchor[check]], second=g.node[members], tag=np.full(len(members), home, np.int64))


def _greedy_anchors(g: Groups, rows: np.ndarray) -> np.ndarray:
    """In keep order, each unclaimed member anchors itself and claims its unclaimed neighbours:
    the row of each member's anchor."""
    anchor = {r: -1 for r in rows.tolist()}
    e = _rows(g, g.edges.ravel()).reshape(-1, 2)
    both = np.concatenate([e, e[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    starts = np.searchsorted(both[:, 0], rows)
    ends = np.searchsorted(both[:, 0], rows, side="right")
    span = dict(zip(rows.tolist(), zip(starts.tolist(), ends.tolist())))
    neighbours = both[:, 1].tolist()
    for r in rows[np.argsort(g.rank[rows])].tolist():
        if anchor[r] >= 0:
            continue
        anchor[r] = r
        s, t = span[r]
        for n in neighbours[s:t]:
            if anchor.get(n, 0) < 0:
                anchor[n] = r
    return np.array([anchor[r] for r in rows.tolist()], np.int64)


def apply(g: Groups, checked: list[Similarities], threshold: float) -> None:
    """Members that passed join their keeper's cluster; those that failed regroup by the pairs
    among them (or stand alone: always, after the greedy round)."""
    sims = [s for s in checked if len(s.pairs)]
    if not sims:
        return
    members = np.concatenate([s.pairs.second for s in sims])
    passed = np.concatenate([s.jaccard for s in sims]) >= threshold
    rows = _rows(g, members)
    g.closed[rows[passed]] = True
    failed = rows[~passed]
    g.keeper[failed] = g.node[failed]
    still_open = ~g.closed
    e = _rows(g, g.edges.ravel()).reshape(-1, 2)
    keep = still_open[e[:, 0]] & still_open[e[:, 1]] & (g.rounds <= GREEDY_AFTER)
    g.edges = g.edges[keep]
    nodes, labels = union_find(g.edges)
    g.group[failed] = g.node[failed]                  # alone, unless a pair regroups it:
    g.group[_rows(g, nodes)] = labels
    alone = np.ones(len(g.node), bool)
    alone[_rows(g, nodes)] = False
    g.closed[failed[alone[failed]]] = True


def drops(g: Groups) -> pa.Table:
    """Every member that is not its cluster's keeper: (file, id, cluster_id = the keeper's id)."""
    dup = np.flatnonzero(g.keeper != g.node)
    return pa.table({"file": pa.array(g.file[dup], pa.int64()), "id": pa.array(g.id[dup].tolist(), pa.string()),
                     "cluster_id": pa.array(g.id[_rows(g, g.keeper[dup])].tolist(), pa.string())})


def statistics(g: Groups, min_size: int) -> ComponentStats:
    """Component sizes, and how many members left their component's keeper."""
    if len(g.node) == 0:
        return ComponentStats()
    labels, inverse, sizes = np.unique(g.component, return_inverse=True, return_counts=True)
    # The component's best-ranked member is kept in every round, so it anchors the first cluster.
    best_rank = np.full(len(labels), np.iinfo(np.int64).max)
    np.minimum.at(best_rank, inverse, g.rank)
    order = np.argsort(g.rank)
    keeper_of_component = g.node[order[np.searchsorted(g.rank[order], best_rank)]]
    off = g.keeper != keeper_of_component[inverse]
    split_components = np.bincount(inverse, weights=off, minlength=len(labels)) > 0
    histogram: dict[str, int] = {}
    for s in sizes.tolist():
        histogram[size_bin(s)] = histogram.get(size_bin(s), 0) + 1
    stats = ComponentStats(components=len(labels), largest=int(sizes.max()), members=len(g.node),
                           size_histogram=histogram, checked=int((sizes >= min_size).sum()),
                           split=int(split_components.sum()), members_split_off=int(off.sum()), rounds=g.rounds)
    return ComponentStats.merge([stats])  # the histogram in size order
