"""Exact Jaccard of document pairs: the kernel's hash tables and the numpy fallback against Python
sets of shingle strings, and the two-step routing across partitions."""

from __future__ import annotations

import gzip
import itertools

import numpy as np
import pytest

from scalelab.pipelines.minhash import pair_similarity as P
from scalelab.pipelines.minhash.components import _partition_of
from scalelab.pipelines.minhash.signatures import shingle_hashes, shingles
from tests.conftest import SAMPLE


def documents() -> list[str]:
    plays = [gzip.open(p, "rt", encoding="utf-8").read()[:20000] for p in sorted((SAMPLE / "texts").glob("*.gz"))]
    edited = [" ".join(w if i % 30 else "EDIT" for i, w in enumerate(p.split())) for p in plays]
    repeated = [plays[0][:3000] * 3]  # shingles repeated inside one document count once
    return plays + edited + repeated + ["", "two words"]


def set_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a, 5)), set(shingles(b, 5))
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


@pytest.mark.parametrize("compiled", [True, False])
def test_pair_jaccard_equals_python_sets(compiled, monkeypatch):
    docs = documents()
    if not compiled:
        monkeypatch.setattr(P, "_kernel", lambda: None)
    sets = shingle_hashes(docs, 5)
    pairs = np.array(list(itertools.combinations_with_replacement(range(len(docs)), 2)))
    got = P.pair_jaccard(sets, pairs[:, 0], sets, pairs[:, 1])
    expected = [set_jaccard(docs[i], docs[j]) for i, j in pairs.tolist()]
    assert got.tolist() == expected  # the same division of the same counts: equal floats


def test_pairs_routed_across_partitions():
    docs = documents()
    k = 3
    nodes = np.arange(100, 100 + len(docs), dtype=np.int64)
    hashes, ranges = shingle_hashes(docs, 5)
    part = _partition_of(nodes, k)
    shingle_pieces = []
    for i in range(k):
        mine = np.flatnonzero(part == i)
        shingle_pieces.append({"node": nodes[mine], "ranges": np.r_[0, np.cumsum(np.diff(ranges)[mine])].astype(np.int64),
                               "hashes": np.concatenate([hashes[ranges[m]:ranges[m + 1]] for m in mine])})
    pairs = np.array(list(itertools.combinations(range(len(docs)), 2)))
    all_pairs = P.Pairs(nodes[pairs[:, 0]], nodes[pairs[:, 1]], np.arange(len(pairs), dtype=np.int64))
    by_first = all_pairs.split(_partition_of(all_pairs.first, k), k)
    sent = [P.send_firsts(k, 1, by_first[j], shingle_pieces[j]) for j in range(k)]
    checked = [P.similarities(k, *[s[i] for s in sent], shingle_pieces[i]) for i in range(k)]
    tags = np.concatenate([c.pairs.tag for c in checked])
    values = np.concatenate([c.jaccard for c in checked])[np.argsort(tags)]
    assert sorted(tags.tolist()) == list(range(len(pairs)))
    assert values.tolist() == [set_jaccard(docs[i], docs[j]) for i, j in pairs.tolist()]
