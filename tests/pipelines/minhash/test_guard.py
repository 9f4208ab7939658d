"""The guarded tail: a chain of near-duplicate pairs is split into clusters anchored at their keepers,
a true cluster stays whole, and the result does not depend on the partitioning.

The documents are real text (a stretch of Hamlet, another of Macbeth) with constructed edits:
- a chain: copy s edits one word in every 60 (class s mod 12 of the positions, with a token of its
  own), so copies next to each other share ~85% of their shingles and copies two apart ~71%:
  every consecutive pair is a near-duplicate, no other pair is;
- a true cluster: the original and seven copies with a few edits each, all pairs above 0.8.
"""

from __future__ import annotations

import gzip
import itertools

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalelab.pipelines.minhash import guard
from scalelab.pipelines.minhash.near_dedup import find_duplicates
from scalelab.pipelines.minhash.signatures import shingles
from tests.conftest import SAMPLE
from tests.pipelines.test_build import sample_config

CHAIN = 24  # long enough that the whole-group rounds run out and the greedy anchoring finishes


def words_of(play: str, start: int, count: int) -> list[str]:
    return gzip.open(SAMPLE / "texts" / f"{play}.txt.gz", "rt", encoding="utf-8").read().split()[start:start + count]


def chain_copy(words: list[str], step: int) -> str:
    """Position p (p % 5 == 0) is in class (p // 5) % 12; copy `step` holds, in each class, the token of
    the last step up to it that edited that class (none: the original word)."""
    out = list(words)
    for p in range(0, len(words), 5):
        cls = (p // 5) % 12
        last = max((s for s in range(1, step + 1) if s % 12 == cls), default=None)
        if last is not None:
            out[p] = f"chain{last}x{p}"
    return " ".join(out)


def documents() -> dict[str, str]:
    hamlet = words_of("hamlet_gut", 3000, 3000)
    macbeth = words_of("macbeth_gut", 3000, 3000)
    docs = {f"chain-{s:02d}": chain_copy(hamlet, s) for s in range(CHAIN)}
    for c in range(8):
        docs[f"cluster-{c}"] = " ".join(f"own{c}x{i}" if c and i % 150 == 11 * c else w for i, w in enumerate(macbeth))
    return docs


def jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a, 5)), set(shingles(b, 5))
    return len(sa & sb) / len(sa | sb)


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The documents in three staged files, as exact dedup leaves them for near dedup."""
    folder = tmp_path_factory.mktemp("staged")
    docs = sorted(documents().items())
    files = []
    for i in range(3):
        part = docs[i::3]
        path = folder / f"part-{i:05d}.parquet"
        pq.write_table(pa.table({"id": [d for d, _ in part], "text": [t for _, t in part]}), path)
        files.append(path)
    return files


def test_the_documents_are_a_chain_and_a_cluster():
    docs = documents()
    chain = [docs[f"chain-{s:02d}"] for s in range(CHAIN)]
    assert all(jaccard(chain[s], chain[s + 1]) >= 0.8 for s in range(CHAIN - 1))
    assert all(jaccard(chain[s], chain[s + 2]) < 0.8 for s in range(CHAIN - 2))
    cluster = [docs[f"cluster-{c}"] for c in range(8)]
    assert all(jaccard(a, b) >= 0.8 for a, b in itertools.combinations(cluster, 2))


def test_chain_splits_true_cluster_stays_whole(ray_local, staged):
    duplicates, figures = find_duplicates(sample_config("dedup.minhash.num_partitions=3"), staged)
    keeper_of = dict(zip(duplicates["id"].to_pylist(), duplicates["cluster_id"].to_pylist()))
    # The chain becomes twelve pairs, each anchored at its smaller id; the cluster keeps its first copy.
    assert keeper_of == {**{f"chain-{s + 1:02d}": f"chain-{s:02d}" for s in range(0, CHAIN, 2)},
                         **{f"cluster-{c}": "cluster-0" for c in range(1, 8)}}
    docs = documents()
    assert all(jaccard(docs[d], docs[k]) >= 0.8 for d, k in keeper_of.items())
    stats = guard.ComponentStats(**figures["components"])
    assert (stats.components, stats.largest, stats.members, stats.checked) == (2, CHAIN, CHAIN + 8, 2)
    assert stats.size_histogram == {"5-8": 1, "17-32": 1}
    assert (stats.split, stats.members_split_off) == (1, CHAIN - 2)
    assert stats.rounds == guard.GREEDY_AFTER + 1  # the last pairs were anchored greedily
    assert figures["clusters"] == CHAIN // 2 + 1 and figures["duplicates"] == CHAIN // 2 + 7


def test_same_clusters_for_any_partitioning(ray_local, staged):
    runs = [find_duplicates(sample_config(*overrides), staged).table for overrides in (
        ["dedup.minhash.num_partitions=1"],
        ["dedup.minhash.num_partitions=4", "dedup.minhash.driver_max_edges=1"],  # components on Ray
        ["dedup.minhash.num_partitions=5"],
    )]
    assert all(r.equals(runs[0]) for r in runs[1:]) and runs[0].num_rows == CHAIN // 2 + 7


def test_without_the_guard_the_chain_is_one_cluster(ray_local, staged):
    duplicates, figures = find_duplicates(sample_config("dedup.minhash.verify_component_size=null"), staged)
    keeper_of = dict(zip(duplicates["id"].to_pylist(), duplicates["cluster_id"].to_pylist()))
    assert {keeper_of[f"chain-{s:02d}"] for s in range(1, CHAIN)} == {"chain-00"}
    assert figures["components"]["split"] == 0 and figures["components"]["rounds"] == 0


def test_size_bins_are_powers_of_two():
    assert [guard.size_bin(n) for n in (2, 3, 4, 5, 8, 9, 859_092)] == [
        "2", "3-4", "3-4", "5-8", "5-8", "9-16", "524289-1048576"]
