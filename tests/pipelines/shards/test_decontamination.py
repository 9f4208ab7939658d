"""Decontamination on a real templated corpus: the sample build (Debian handbook pages in ten
languages and IANA pages, each site with its own template, plus plays), whose pages share
navigation, headings and untranslated paragraphs.

- the rule, recomputed here from the documents with plain Python sets, decides every split;
- the bulk of the training text survives, where "any shared 13-gram" removed far more;
- a copied validation page, and a lightly edited copy, are removed and reported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from scalelab.pipelines.config import load_corpus_config
from scalelab.pipelines.shards.build_shards import build_shards, document_key
from scalelab.pipelines.shards.decontamination import ngram_hashes
from scalelab.core.manifest import read_manifest
from scalelab.core.config import ConfigError
from tests.pipelines.shards.test_shards import index, train_documents
from tests.pipelines.test_build import sample_config


@pytest.fixture(scope="module")
def sample(ray_local, sample_corpus) -> Path:
    return sample_corpus


def documents(out: Path) -> dict[str, str]:
    return {r["id"]: r["text"] for f in sorted((out / "documents").glob("*.parquet"))
            for r in pq.read_table(f, columns=["id", "text"]).to_pylist()}


def splits(out: Path) -> dict[str, set[str]]:
    m = read_manifest(out)
    return {"validation": set(index(out, m.validation.index)["id"].to_pylist()),
            "train": {i for i, _ in train_documents(out, m)},
            "decontaminated": set(pq.read_table(out / "stats" / "decontaminated.parquet")["id"].to_pylist())}


def rebuild(out: Path, copy: Path, *overrides: str, extra: dict[str, str] | None = None) -> Path:
    """The shards again from `out`'s documents (and `extra` ones), with its tokenizer (same tokens)."""
    shutil.copytree(out / "documents", copy / "documents")
    (copy / "stats").mkdir()
    if extra:
        pq.write_table(pa.table({"id": list(extra), "text": list(extra.values()), "lang": ["en"] * len(extra)}),
                       copy / "documents" / "part-99999.parquet")
    cfg = sample_config(f"shards.tokenizer.path={out / 'tokenizer.json'}", *overrides)
    build_shards(cfg, copy, len(documents(copy)))
    return copy


def test_every_split_follows_the_rule(sample):
    m = read_manifest(sample)
    d = m.decontamination
    tok = Tokenizer.from_file(str(sample / "tokenizer.json"))
    grams = {i: set(ngram_hashes(np.array(tok.encode(t, add_special_tokens=False).ids), d["ngram"])
                    .tolist()) for i, t in documents(sample).items()}
    got = splits(sample)
    validation = set().union(*(grams[i] for i in got["validation"]))
    frequency = {g: sum(g in s for s in grams.values()) for g in validation}
    frequent = {g for g, f in frequency.items() if f > d["max_ngram_doc_frequency"]}
    counted = validation - frequent
    expected = set()
    for i, s in grams.items():
        if i in got["validation"]:
            continue
        matched, total = len(s & counted), len(s - frequent)
        if matched and matched / total >= d["min_overlap_fraction"]:
            expected.add(i)
    assert got["decontaminated"] == expected
    assert got["train"] == set(grams) - got["validation"] - expected
    assert d["frequent_ngrams"] == len(frequent)
    assert d["validation_ngrams"] == len(validation)


def test_the_bulk_survives_where_any_shared_ngram_removed_much_more(sample, tmp_path):
    m = read_manifest(sample)
    d, tokens = m.decontamination, m.documents
    summary_tokens = json.loads((sample / "stats" / "shards.json").read_text())["tokens"]
    assert summary_tokens["decontaminated"] == d["tokens"]
    outside_validation = summary_tokens["train"] + d["tokens"]
    assert summary_tokens["train"] >= 0.9 * outside_validation, d
    # The old rule: one shared 13-gram, however common, removed a document.
    old = rebuild(sample, tmp_path / "old", "shards.decontamination.min_overlap_fraction=1e-9",
                  "shards.decontamination.max_ngram_doc_frequency=1000000000", "shards.scales={20k: 20k}")
    old_d = read_manifest(old).decontamination
    assert old_d["documents"] >= 3 * max(1, d["documents"]) and old_d["tokens"] > 3 * max(1, d["tokens"]), (old_d, d)
    assert tokens["in"] == read_manifest(old).documents["in"]


def lightly_edited(text: str) -> str:
    """Every 25th word replaced, a sentence added at the top."""
    words = text.split(" ")
    return "Mirrored from the handbook. " + " ".join("edited" if i % 25 == 24 else w for i, w in enumerate(words))


def test_a_copied_validation_page_and_an_edited_copy_are_removed(sample, tmp_path):
    texts = documents(sample)
    validation = index(sample, read_manifest(sample).validation.index)["id"].to_pylist()
    urls = {r["id"]: r["url"] or "" for r in pq.read_table(sample / "documents", columns=["id", "url"]).to_pylist()}
    page = max((i for i in validation if "debian-handbook.info" in urls[i]), key=lambda i: len(texts[i]))
    # Ids whose keys sort after the whole validation set, so it stays the same set.
    seed = read_manifest(sample).seed
    last = max(document_key(seed, i) for i in validation)
    names = (f"copy-{n}" for n in range(10_000) if document_key(seed, f"copy-{n}") > last)
    copy, edited = next(names), next(names)
    out = rebuild(sample, tmp_path / "copies", extra={copy: texts[page], edited: lightly_edited(texts[page])})
    got = splits(out)
    assert got["validation"] == set(validation)
    assert {copy, edited} <= got["decontaminated"] and not {copy, edited} & got["train"]
    removed = {r["id"]: r for r in pq.read_table(out / "stats" / "decontaminated.parquet").to_pylist()}
    assert removed[copy]["overlap"] == 1.0 and 0.5 <= removed[edited]["overlap"] < 1.0, removed[edited]
    # Everything else keeps its split.
    before = splits(sample)
    assert got["train"] == before["train"] and got["decontaminated"] - {copy, edited} == before["decontaminated"]


@pytest.mark.parametrize("setting,message", [
    ("min_overlap_fraction=0", "must be greater than 0 and at most 1"),
    ("min_overlap_fraction=1.5", "must be greater than 0 and at most 1"),
    ("max_ngram_doc_frequency=1", "must be at least 2"),
])
def test_settings_are_bounded(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_corpus_config(None, [f"shards.decontamination.{setting}"])
