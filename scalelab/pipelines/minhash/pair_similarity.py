"""Exact Jaccard similarity of document pairs whose shingles live in different partitions.

Documents' shingle hashes are spread over K hash partitions by node (see near_dedup.sign_file).
Two steps, each a task per partition:

    send_firsts (at the partition of the pairs' first documents): every distinct first document's
        shingle set goes, once per destination, with its pairs to the second documents' partitions;
    similarities (at the second documents' partition): the Jaccard of every pair.

A task holds its own partition's shingles plus the distinct first documents of the pairs it was
sent, so memory and work stay linear in pairs and documents even when one document is in many
pairs. The candidate verification and the cluster guard (guard.py) both check pairs this way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalelab.pipelines.minhash.components import _partition_of
from scalelab.pipelines.minhash.signatures import Shingles

ShinglePiece = dict[str, np.ndarray]  # node, ranges (into hashes), hashes: as near_dedup.sign_file writes them


@dataclass
class Pairs:
    """Document pairs (nodes), and a tag each carries through the checks (where its answer goes)."""

    first: np.ndarray
    second: np.ndarray
    tag: np.ndarray

    @staticmethod
    def empty() -> "Pairs":
        return Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))

    @staticmethod
    def concat(pieces: list["Pairs"]) -> "Pairs":
        pieces = [p for p in pieces if len(p)]
        if not pieces:
            return Pairs.empty()
        return Pairs(*(np.concatenate([getattr(p, f) for p in pieces]) for f in ("first", "second", "tag")))

    def __len__(self) -> int:
        return len(self.first)

    def take(self, rows: np.ndarray) -> "Pairs":
        return Pairs(self.first[rows], self.second[rows], self.tag[rows])

    def split(self, part: np.ndarray, k: int) -> list["Pairs"]:
        return [self.take(part == i) for i in range(k)]


@dataclass
class PairsWithFirsts:
    """Pairs on their way to the second documents' partition, with the first documents' shingle
    sets (sorted, unique), one per distinct first document (`firsts`, sorted)."""

    pairs: Pairs
    firsts: np.ndarray
    sets: Shingles


@dataclass
class Similarities:
    pairs: Pairs
    jaccard: np.ndarray


def concat_shingles(pieces: tuple[ShinglePiece, ...]) -> ShinglePiece:
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


def shingle_sets(shingles: ShinglePiece, wanted: np.ndarray) -> Shingles:
    """The sorted, unique shingle hashes of each of the `wanted` nodes, in that order."""
    order = np.argsort(shingles["node"], kind="stable")
    pos = order[np.searchsorted(shingles["node"], wanted, sorter=order)]
    sets = [np.unique(shingles["hashes"][shingles["ranges"][p]:shingles["ranges"][p + 1]]) for p in pos.tolist()]
    counts = np.array([len(s) for s in sets], dtype=np.int64)
    hashes = np.concatenate(sets) if sets else np.empty(0, np.uint64)
    return Shingles(hashes, np.r_[0, np.cumsum(counts)].astype(np.int64))


def _subset(sets: Shingles, rows: np.ndarray) -> Shingles:
    counts = sets.ranges[rows + 1] - sets.ranges[rows]
    hashes = (np.concatenate([sets.hashes[sets.ranges[r]:sets.ranges[r + 1]] for r in rows.tolist()])
              if len(rows) else np.empty(0, np.uint64))
    return Shingles(hashes, np.r_[0, np.cumsum(counts)].astype(np.int64))


def send_firsts(k: int, num_pair_pieces: int, *pieces) -> tuple[PairsWithFirsts, ...]:
    """At the first documents' partition: `pieces` are Pairs pieces, then this partition's shingle
    pieces. Returns one PairsWithFirsts per partition of the second documents."""
    pairs = Pairs.concat(list(pieces[:num_pair_pieces]))
    shingles = concat_shingles(pieces[num_pair_pieces:])
    firsts = np.unique(pairs.first)
    sets = shingle_sets(shingles, firsts)  # each distinct first document's set is built once
    destination = _partition_of(pairs.second, k)
    out = []
    for piece in pairs.split(destination, k):
        mine = np.unique(piece.first)
        out.append(PairsWithFirsts(piece, mine, _subset(sets, np.searchsorted(firsts, mine))))
    return tuple(out)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of unique values."""
    if len(a) > len(b):
        a, b = b, a
    if len(a) == 0:
        return 0.0
    at = np.searchsorted(b, a)
    np.minimum(at, len(b) - 1, out=at)
    inter = int(np.count_nonzero(b[at] == a))
    return inter / (len(a) + len(b) - inter)


def similarities(num_received: int, *pieces) -> Similarities:
    """At the second documents' partition: `pieces` are the PairsWithFirsts sent here, then this
    partition's shingle pieces. The exact Jaccard of every pair's shingle sets."""
    received, shingles = pieces[:num_received], concat_shingles(pieces[num_received:])
    all_pairs, values = [], []
    for piece in received:
        pairs = piece.pairs
        if not len(pairs):
            continue
        seconds = np.unique(pairs.second)
        second_sets = shingle_sets(shingles, seconds)
        fi = np.searchsorted(piece.firsts, pairs.first).tolist()
        si = np.searchsorted(seconds, pairs.second).tolist()
        fr, sr = piece.sets.ranges, second_sets.ranges
        values.append(np.array([jaccard(piece.sets.hashes[fr[f]:fr[f + 1]], second_sets.hashes[sr[s]:sr[s + 1]])
                                for f, s in zip(fi, si)], dtype=np.float64))
        all_pairs.append(pairs)
    return Similarities(Pairs.concat(all_pairs), np.concatenate(values) if values else np.empty(0, np.float64))
