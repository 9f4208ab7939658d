"""The loader over the sample corpus's shards: windows, rank slices, epochs, resume, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalelab.core.shard_format import ShardReader
from scalelab.training.data import Corpus, DataError, ScaleTokens, TrainBatches, ValidationWindows


@pytest.fixture(scope="module")
def corpus(sample_corpus) -> Corpus:
    return Corpus(sample_corpus)


def stream(corpus: Corpus) -> np.ndarray:
    return np.concatenate([ShardReader(corpus.shard_path(s.path)).all_tokens() for s in corpus.manifest.shards])


def test_scale_tokens_cross_shard_boundaries(corpus):
    tokens = ScaleTokens(corpus, "150k")  # three shards of 64k tokens
    full = stream(corpus)
    assert tokens.num_tokens == 150_000
    for start in (0, 63_990, 127_995, 149_000):
        assert np.array_equal(tokens.window(start, 1000), full[start : start + 1000])
    with pytest.raises(IndexError):
        tokens.window(149_500, 501)


def test_windows_are_inputs_and_next_token_targets(corpus):
    loader = TrainBatches(ScaleTokens(corpus, "20k"), 64, 4, 1, 0, 1, seed=0)
    (x, y), = loader.next_step()
    assert x.shape == y.shape == (4, 64) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    w = loader.window_index(0)
    assert torch.equal(x[0], torch.from_numpy(stream(corpus)[w * 64 : w * 64 + 64].astype(np.int64)))


def stream_positions(world: int, micro: int, accum: int, steps: int) -> list[list[int]]:
    """For each rank, the stream positions it reads in `steps` optimizer steps."""
    corpus_tokens = type("T", (), {"num_tokens": 10_000})()
    out = []
    for rank in range(world):
        loader = TrainBatches(corpus_tokens, 100, micro, accum, rank, world, seed=3)
        seen = []
        for step in range(steps):
            for m in range(accum):
                seen += loader.rank_slice(step * loader.windows_per_step, m)
        out.append(seen)
    return out


@pytest.mark.parametrize("world,micro,accum", [(2, 4, 1), (3, 2, 2), (4, 1, 3)])
def test_rank_slices_are_disjoint_and_cover_each_step(world, micro, accum):
    per_rank = stream_positions(world, micro, accum, steps=5)
    flat = [g for seen in per_rank for g in seen]
    assert len(flat) == len(set(flat)) == 5 * world * micro * accum
    assert sorted(flat) == list(range(5 * world * micro * accum))


def test_stream_is_seeded_reshuffled_per_epoch_and_independent_of_world_size(corpus):
    tokens = ScaleTokens(corpus, "20k")
    a = TrainBatches(tokens, 128, 4, 1, 0, 1, seed=7)
    b = TrainBatches(tokens, 128, 4, 1, 0, 1, seed=7)
    c = TrainBatches(tokens, 128, 4, 1, 0, 1, seed=8)
    n = a.num_windows
    epoch0 = [a.window_index(g) for g in range(n)]
    epoch1 = [a.window_index(g) for g in range(n, 2 * n)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(n))  # each epoch visits every window once
    assert epoch0 != epoch1  # in a new order
    assert epoch0 == [b.window_index(g) for g in range(n)]
    assert epoch0 != [c.window_index(g) for g in range(n)]
    # The same global stream whatever the number of ranks: position g is window_index(g) for all.
    two = TrainBatches(tokens, 128, 2, 1, 1, 2, seed=7)
    assert [two.window_index(g) for g in range(n)] == epoch0


def test_epochs_are_counted_and_state_resumes_exactly(corpus):
    tokens = ScaleTokens(corpus, "20k")
    loader = TrainBatches(tokens, 128, 8, 2, 0, 1, seed=1)
    for _ in range(12):
        loader.next_step()
    assert loader.epochs == pytest.approx(12 * 16 / loader.num_windows)
    assert loader.epochs > 1  # 20k tokens hold 156 windows: the run went round again
    state = loader.state_dict()
    expected = [torch.cat([x for x, _ in loader.next_step()]) for _ in range(3)]
    again = TrainBatches(tokens, 128, 8, 2, 0, 1, seed=1)
    again.load_state_dict(state)
    assert all(torch.equal(e, torch.cat([x for x, _ in again.next_step()])) for e in expected)
    other = TrainBatches(tokens, 64, 8, 2, 0, 1, seed=1)
    with pytest.raises(DataError, match="seq_len=128, this run 64"):
        other.load_state_dict(state)


def test_validation_is_a_fixed_prefix_split_evenly_across_ranks(corpus):
    one = ValidationWindows(corpus, 128, 4096, 0, 1)
    assert one.num_windows == (4096 - 1) // 128 and one.tokens == one.num_windows * 128
    rows = {}
    counts = []
    for rank in range(3):
        v = ValidationWindows(corpus, 128, 4096, rank, 3)
        batches = list(v.batches(5))
        counts.append(len(batches))
        real = torch.cat([x[:r] for x, _, r in batches])
        for w, row in zip(v.mine, real):
            rows[w] = row
    assert len(set(counts)) == 1  # equal forward passes on every rank (ZeRO-3 needs it)
    assert sorted(rows) == list(range(one.num_windows))
    x_all = torch.cat([x[:r] for x, _, r in one.batches(8)])
    assert all(torch.equal(rows[w], x_all[w]) for w in rows)


def test_unknown_scale_and_missing_manifest(corpus, tmp_path):
    with pytest.raises(DataError, match="no scale '1M'; the manifest has 20k, 40k, 80k, 150k"):
        corpus.scale_tokens("1M")
    with pytest.raises(DataError, match="no manifest.json"):
        Corpus(tmp_path)
