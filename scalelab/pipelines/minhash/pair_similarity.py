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

import ctypes

import numpy as np

from scalelab.pipelines.minhash.components import _partition_of
from scalelab.pipelines.minhash.signatures import Shingles, _kernel, _ptr  # the compiled kernel

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
    hashes, once per distinct first document (`firsts`, sorted)."""

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


def shingles_of(shingles: ShinglePiece, wanted: np.ndarray) -> Shingles:
    """The shingle hashes of each of the `wanted` nodes, in that order."""
    order = np.argsort(shingles["node"], kind="stable")
    pos = order[np.searchsorted(shingles["node"], wanted, sorter=order)]
    starts, ends = shingles["ranges"][pos], shingles["ranges"][pos + 1]
    hashes = (np.concatenate([shingles["hashes"][s:e] for s, e in zip(starts.tolist(), ends.tolist())])
              if len(wanted) else np.empty(0, np.uint64))
    return Shingles(hashes, np.r_[0, np.cumsum(ends - starts)].astype(np.int64))


def send_firsts(k: int, num_pair_pieces: int, *pieces) -> tuple[PairsWithFirsts, ...]:
    """At the first documents' partition: `pieces` are Pairs pieces, then this partition's shingle
    pieces. Returns one PairsWithFirsts per partition of the second documents."""
    pairs = Pairs.concat(list(pieces[:num_pair_pieces]))
    shingles = concat_shingles(pieces[num_pair_pieces:])
    out = []
    for piece in pairs.split(_partition_of(pairs.second, k), k):
        firsts = np.unique(piece.first)
        out.append(PairsWithFirsts(piece, firsts, shingles_of(shingles, firsts)))
    return tuple(out)


def pair_jaccard(a: Shingles, index_a: np.ndarray, b: Shingles, index_b: np.ndarray) -> np.ndarray:
    """Jaccard similarity of the shingle sets of documents a[index_a[i]] and b[index_b[i]]: in the
    compiled kernel (a hash table per pair, linear in the two documents), else with numpy (sorted sets)."""
    lib = _kernel()
    if lib is None:
        sets_a = [_sorted_unique(a.hashes[a.ranges[d]:a.ranges[d + 1]]) for d in range(len(a.ranges) - 1)]
        sets_b = [_sorted_unique(b.hashes[b.ranges[d]:b.ranges[d + 1]]) for d in range(len(b.ranges) - 1)]
        return np.array([_jaccard_sorted(sets_a[i], sets_b[j]) for i, j in zip(index_a.tolist(), index_b.tolist())],
                        dtype=np.float64)
    index_a, index_b = (np.ascontiguousarray(i, dtype=np.int64) for i in (index_a, index_b))
    longest = int(np.diff(a.ranges).max(initial=0) + np.diff(b.ranges).max(initial=0))
    capacity = 1 << max(1, (2 * longest - 1).bit_length())
    keys, tags = np.empty(capacity, np.uint64), np.empty(capacity, np.uint8)
    out = np.empty(len(index_a), np.float64)
    a_hashes, b_hashes = (np.ascontiguousarray(x.hashes, dtype=np.uint64) for x in (a, b))
    a_ranges, b_ranges = (np.ascontiguousarray(x.ranges, dtype=np.int64) for x in (a, b))
    lib.scalelab_pair_jaccard(_ptr(a_hashes, ctypes.c_uint64), _ptr(a_ranges, ctypes.c_int64), _ptr(index_a, ctypes.c_int64),
                              _ptr(b_hashes, ctypes.c_uint64), _ptr(b_ranges, ctypes.c_int64), _ptr(index_b, ctypes.c_int64),
                              len(index_a), _ptr(keys, ctypes.c_uint64), _ptr(tags, ctypes.c_uint8), capacity,
                              _ptr(out, ctypes.c_double))
    return out


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    s = np.sort(values)  # not np.unique: numpy 2's hashes first and costs several times more here
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def _jaccard_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of unique values."""
    if len(a) > len(b):
        a, b = b, a
    if len(a) == 0:
        return 0.0
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
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
        values.append(pair_jaccard(piece.sets, np.searchsorted(piece.firsts, pairs.first),
                                   shingles_of(shingles, seconds), np.searchsorted(seconds, pairs.second)))
        all_pairs.append(pairs)
    return Similarities(Pairs.concat(all_pairs), np.concatenate(values) if values else np.empty(0, np.float64))
