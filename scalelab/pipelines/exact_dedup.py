"""Exact deduplication: one copy per normalized text, decided inside each hash partition.

Documents are routed to partitions by the hash of their normalized text, so all copies of a
text meet in one partition and no process ever holds more than its partition's hashes.
Within a hash the smallest id is kept, so the choice does not depend on arrival order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

STAGE = "exact_dedup"
REASON = "exact_duplicate"

_NON_WORD_RE = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Casefold, drop punctuation and symbols, fold whitespace: copies that differ only so are equal."""
    return _NON_WORD_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str, normalized: bool = True) -> bytes:
    return hashlib.blake2b((normalize(text) if normalized else text).encode("utf-8"), digest_size=16).digest()


def partition_of(digest: bytes, num_partitions: int) -> int:
    return int.from_bytes(digest[:8], "big") % num_partitions


def mark_duplicates(kept: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split kept documents into (unique, duplicates); duplicates gain `cluster_id` (the kept copy's id)."""
    if kept.num_rows == 0:
        return kept, kept.append_column("cluster_id", pa.array([], pa.string()))
    order = pc.sort_indices(kept, sort_keys=[("text_hash", "ascending"), ("id", "ascending")])
    ordered = kept.take(order)
    hashes = ordered.column("text_hash").to_pylist()
    ids = ordered.column("id").to_pylist()
    first = [True] * len(hashes)
    cluster = [None] * len(hashes)
    for i in range(1, len(hashes)):
        if hashes[i] == hashes[i - 1]:
            first[i] = False
            cluster[i] = ids[i - 1] if first[i - 1] else cluster[i - 1]
    mask = pa.array(first)
    unique = ordered.filter(mask)
    dupes = ordered.filter(pc.invert(mask)).append_column(
        "cluster_id", pa.array([c for c, f in zip(cluster, first) if not f], pa.string())
    )
    return unique, dupes
