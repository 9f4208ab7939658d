"""Token shards of the sample corpus: nesting, disjointness, round trip, determinism, dtype, verify."""

from __future__ import annotations

import shutil
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer
from typer.testing import CliRunner

from scalelab.pipelines.shards.build_shards import ShardsError, build_shards
from scalelab.core.shard_format import ShardReader
from scalelab.core.manifest import Manifest, read_manifest, verify
from scalelab.pipelines.stats import read_stats
from scalelab.cli import app
from tests.pipelines.test_build import sample_config


@pytest.fixture(scope="module")
def built(ray_local, sample_corpus):
    """(the build's accounting, its folder): the session's sample corpus."""
    return SimpleNamespace(stats=read_stats(sample_corpus)), sample_corpus


def stream(out: Path, manifest: Manifest) -> np.ndarray:
    return np.concatenate([ShardReader(out / "shards" / s.path).all_tokens() for s in manifest.shards])


def index(out: Path, name: str) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(out / "shards" / name))).read_all()


def documents_by_id(out: Path) -> dict[str, str]:
    return {r["id"]: r["text"] for r in pq.read_table(out / "documents", columns=["id", "text"]).to_pylist()}


def train_documents(out: Path, manifest: Manifest) -> list[tuple[str, np.ndarray]]:
    """(id, tokens incl. end-of-document) of every training document, in stream order."""
    tokens = stream(out, manifest)
    docs, offset = [], 0
    for s in manifest.shards:
        idx = index(out, s.index)
        for start, n, doc_id in zip(idx["start"].to_pylist(), idx["tokens"].to_pylist(), idx["id"].to_pylist()):
            docs.append((doc_id, tokens[offset + start : offset + start + n]))
        offset += s.tokens
    return docs


def test_scales_are_nested_prefixes(built):
    _, out = built
    m = read_manifest(out)
    full = stream(out, m)
    previous = None
    for name, scale in sorted(m.scales.items(), key=lambda kv: kv[1].tokens):
        parts = [ShardReader(out / "shards" / p).all_tokens() for p in scale.shards]
        parts[-1] = parts[-1][: scale.last_shard_tokens]
        tokens = np.concatenate(parts)
        assert len(tokens) == scale.tokens and np.array_equal(tokens, full[: len(tokens)])
        if previous is not None:
            assert np.array_equal(tokens[: len(previous)], previous), name
        previous = tokens
    assert [s.tokens for s in sorted(m.scales.values(), key=lambda s: s.tokens)] == [20_000, 40_000, 80_000, 150_000]


def test_validation_and_training_are_disjoint(built):
    _, out = built
    m = read_manifest(out)
    val = index(out, m.validation.index)
    train = train_documents(out, m)
    assert not set(val["id"].to_pylist()) & {i for i, _ in train}
    docs = m.documents
    assert docs["in"] == docs["validation"] + docs["train"] + docs["decontaminated"] == len(documents_by_id(out))
    # Which documents decontamination removed, and why: tests/pipelines/shards/test_decontamination.py.
    removed = pq.read_table(out / "stats" / "decontaminated.parquet")
    assert removed.num_rows == docs["decontaminated"] == m.decontamination["documents"]
    assert sum(removed["n_tokens"].to_pylist()) == m.decontamination["tokens"]
    assert not set(removed["id"].to_pylist()) & ({i for i, _ in train} | set(val["id"].to_pylist()))


def test_round_trip_reproduces_the_documents_in_order(built):
    _, out = built
    m = read_manifest(out)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = documents_by_id(out)
    docs = train_documents(out, m)
    assert len(docs) == m.documents["train"]
    for doc_id, tokens in docs:
        assert tokens[-1] == m.tokenizer.eod_id
        assert tok.decode(tokens[:-1].tolist(), skip_special_tokens=False) == texts[doc_id]


def test_plain_pyarrow_reads_the_shards(built):
    _, out = built
    m = read_manifest(out)
    table = pa.ipc.open_file(pa.memory_map(str(out / "shards" / m.shards[0].path))).read_all()
    assert table.schema.field("tokens").type == pa.uint16() and m.dtype == "uint16"
    assert table.num_rows == m.shards[0].tokens == m.shard_tokens
    reader = ShardReader(out / "shards" / m.shards[0].path)
    assert np.array_equal(reader.window(63_990, 10), table["tokens"].to_numpy()[63_990:64_000])


def test_writer_and_reader_across_batches_and_shards(tmp_path):
    from scalelab.core.shard_format import ShardWriter

    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 60_000, n).astype(np.uint32) for n in (5, 130, 1, 77, 300, 2)]
    writer = ShardWriter(tmp_path, "t", shard_tokens=100, batch_tokens=16, dtype=np.dtype(np.uint16))
    for i, d in enumerate(docs):
        writer.add(f"d{i}", d)
    files = writer.close()
    flat = np.concatenate(docs)
    assert [f["tokens"] for f in files] == [100, 100, 100, 100, 100, 15]
    got = np.concatenate([ShardReader(tmp_path / f["path"]).all_tokens() for f in files])
    assert np.array_equal(got, flat) and got.dtype == np.uint16
    r = ShardReader(tmp_path / files[1]["path"])
    assert r.batch_tokens == 16 and np.array_equal(r.window(10, 40), flat[110:150])  # spans three batches
    with pytest.raises(IndexError):
        r.window(90, 20)
    # Each document is indexed in the shard where it starts; one can span several shards.
    starts = [pa.ipc.open_file(pa.memory_map(str(tmp_path / f["index"]))).read_all().to_pylist() for f in files]
    assert [[(r["id"], r["start"], r["tokens"]) for r in s] for s in starts] == [
        [("d0", 0, 5), ("d1", 5, 130)], [("d2", 35, 1), ("d3", 36, 77)], [("d4", 13, 300)], [], [], [("d5", 13, 2)]]


def test_same_shards_with_one_or_three_workers(built, tmp_path):
    result, out = built
    copies = {}
    for workers in (1, 3):
        copy = tmp_path / f"w{workers}"
        shutil.copytree(out / "documents", copy / "documents")
        (copy / "stats").mkdir()
        cfg = sample_config(f"shards.tokenize_workers={workers}")
        build_shards(cfg, copy, result.stats.documents_kept)
        copies[workers] = {p.name: p.read_bytes() for p in sorted((copy / "shards").iterdir())}
        copies[workers]["decontaminated"] = (copy / "stats" / "decontaminated.parquet").read_bytes()
    original = {p.name: p.read_bytes() for p in sorted((out / "shards").iterdir())}
    original["decontaminated"] = (out / "stats" / "decontaminated.parquet").read_bytes()
    assert copies[1] == copies[3] == original


def test_large_vocabulary_uses_uint32(built, tmp_path):
    result, out = built
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.add_tokens([f"<extra_{i}>" for i in range(70_000)])
    assert tok.get_vocab_size() > 2**16
    tok.save(str(tmp_path / "big.json"))
    copy = tmp_path / "big"
    shutil.copytree(out / "documents", copy / "documents")
    (copy / "stats").mkdir()
    build_shards(sample_config(f"shards.tokenizer.path={tmp_path / 'big.json'}"), copy, result.stats.documents_kept)
    m = read_manifest(copy)
    assert m.dtype == "uint32" and not m.tokenizer.trained
    assert index(copy, m.shards[0].index).num_rows > 0
    table = pa.ipc.open_file(pa.memory_map(str(copy / "shards" / m.shards[0].path))).read_all()
    assert table.schema.field("tokens").type == pa.uint32()
    texts = documents_by_id(copy)
    big = Tokenizer.from_file(str(copy / "tokenizer.json"))
    for doc_id, tokens in train_documents(copy, m)[:5]:
        assert big.decode(tokens[:-1].tolist(), skip_special_tokens=False) == texts[doc_id]


def test_verify_catches_a_flipped_byte(built, tmp_path):
    _, out = built
    assert verify(out) == []
    copy = tmp_path / "flipped"
    shutil.copytree(out, copy)
    m = read_manifest(copy)
    path = copy / "shards" / m.shards[1].path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = verify(copy)
    assert any(m.shards[1].path in p and "sha256" in p for p in problems)
    res = CliRunner().invoke(app, ["corpus", "verify", str(copy)])
    assert res.exit_code == 1 and "sha256 differs" in res.output
    assert CliRunner().invoke(app, ["corpus", "verify", str(out)]).exit_code == 0


def test_budget_larger_than_the_corpus_says_how_many_tokens_exist(built, tmp_path):
    result, out = built
    copy = tmp_path / "big-budget"
    shutil.copytree(out / "documents", copy / "documents")
    (copy / "stats").mkdir()
    with pytest.raises(ShardsError, match=r"shards\.scales\.huge: 16,000,000 tokens asked, but the training split has [\d,]+ tokens"):
        build_shards(sample_config("shards.scales={huge: 16M}"), copy, result.stats.documents_kept)
    with pytest.raises(ShardsError, match=r"shards\.validation\.tokens: 10,000,000 tokens asked, but the corpus has "
                                          r"135 documents and [\d,]+ tokens"):
        build_shards(sample_config("shards.validation.tokens=10M"), copy, result.stats.documents_kept)


def test_validation_by_document_count(built, tmp_path):
    result, out = built
    copy = tmp_path / "by-docs"
    shutil.copytree(out / "documents", copy / "documents")
    (copy / "stats").mkdir()
    build_shards(sample_config("shards.validation.documents=5", "shards.scales={10k: 10k}"), copy,
                 result.stats.documents_kept)
    m = read_manifest(copy)
    assert m.documents["validation"] == m.validation.documents == 5
    # The same five smallest-key documents open the token-budget validation set too.
    first = index(out, read_manifest(out).validation.index)["id"].to_pylist()[:5]
    assert index(copy, m.validation.index)["id"].to_pylist() == first
