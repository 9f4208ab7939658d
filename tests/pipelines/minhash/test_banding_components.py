"""LSH banding (parameter choice and the collision curve) and connected components on Ray."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHashLSH

from scalelab.pipelines.minhash.banding import band_keys, choose_bands, collision_probability
from scalelab.pipelines.minhash.components import connected_components, distributed_components, union_find
from scalelab.pipelines.minhash.signatures import minhash_signatures


@pytest.mark.parametrize("threshold,num_perm", [(0.8, 128), (0.5, 128), (0.9, 256), (0.7, 64)])
def test_band_choice_equals_datasketch(threshold, num_perm):
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert choose_bands(threshold, num_perm) == (lsh.b, lsh.r)


def test_collision_curve_matches_theory():
    # Pairs of word sets with known Jaccard similarity; the share that collide in some band
    # must follow 1 - (1 - s^r)^b.
    rng = np.random.default_rng(5)
    bands, rows = choose_bands(0.8, 128)
    for target in (0.5, 0.7, 0.8, 0.9):
        union = 400
        shared = int(round(target * union))
        collided = 0
        trials = 120
        for t in range(trials):
            words = [f"w{t}_{i}" for i in rng.permutation(union + (union - shared))]
            common, rest = words[:shared], words[shared:]
            half = len(rest) // 2
            a, b = common + rest[:half], common + rest[half:]
            s = len(set(a) & set(b)) / len(set(a) | set(b))
            sigs = minhash_signatures([" ".join(a), " ".join(b)], num_perm=128, ngram=1, seed=t)
            keys = band_keys(sigs, bands, rows)
            collided += bool((keys[0] == keys[1]).any())
        expected = collision_probability(s, bands, rows)
        assert abs(collided / trials - expected) < 0.12, (target, collided / trials, expected)


def test_band_keys_shape_and_salting():
    sigs = np.zeros((3, 128), dtype=np.uint64)  # identical bands must still differ across bands
    keys = band_keys(sigs, 9, 13)
    assert keys.shape == (3, 9) and len(set(keys[0].tolist())) == 9
    with pytest.raises(ValueError):
        band_keys(sigs, 20, 13)


def graphs():
    rng = np.random.default_rng(0)
    chain = np.stack([np.arange(3000), np.arange(1, 3001)], axis=1)
    return {
        "random": rng.integers(0, 2000, (3000, 2)),
        "long chain": chain[rng.permutation(len(chain))],
        "one huge component": np.stack([rng.integers(0, 5000, 12000), rng.integers(0, 5000, 12000)], axis=1),
        "stars and pairs": np.concatenate([np.stack([np.full(50, 7), np.arange(100, 150)], axis=1),
                                           np.array([[1, 2], [3, 4], [2**40, 5]])]),
        "empty": np.empty((0, 2)),
    }


@pytest.mark.parametrize("name", list(graphs()))
def test_distributed_components_equal_union_find(ray_local, name):
    edges = graphs()[name].astype(np.int64)
    nodes, labels = union_find(edges[edges[:, 0] != edges[:, 1]])
    chunks = [edges[: len(edges) // 3], edges[len(edges) // 3 :]]
    d_nodes, d_labels = distributed_components(chunks, num_partitions=4)
    assert np.array_equal(nodes, d_nodes) and np.array_equal(labels, d_labels)


def test_union_find_labels_are_component_minimums():
    nodes, labels = union_find(np.array([[5, 3], [3, 9], [20, 11]]))
    assert dict(zip(nodes.tolist(), labels.tolist())) == {3: 3, 5: 3, 9: 3, 11: 11, 20: 11}


def test_fast_path_threshold(ray_local):
    edges = graphs()["random"].astype(np.int64)
    a = connected_components(edges, driver_max_edges=10**9)
    b = connected_components(edges, num_partitions=3, driver_max_edges=10)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
