"""A corpus in object storage trains from a local copy fetched once per machine and checked against
its manifest (core/corpus_cache.py), against a real S3 server on loopback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalelab.core.manifest import verify
from scalelab.core.storage import Location
from scalelab.training.config import load_train_config
from scalelab.training.data import Corpus, DataError, ScaleTokens
from tests.conftest import REPO
from tests.s3_server import S3Server, local_s3


@pytest.fixture(scope="module")
def s3():
    with local_s3() as server:
        yield server


def upload_corpus(s3: S3Server, folder: Path, prefix: str) -> str:
    """What training reads of a built corpus: manifest, tokenizer, shards."""
    for path in [folder / "manifest.json", folder / "tokenizer.json", *sorted((folder / "shards").iterdir())]:
        s3.upload(path, f"{prefix}/{path.relative_to(folder)}")
    return s3.url(prefix)


def test_a_corpus_url_gives_the_tokens_of_the_built_folder(s3, sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    url = upload_corpus(s3, sample_corpus, "corpora/sample")
    local, remote = Corpus(sample_corpus), Corpus(url)
    assert remote.folder.parent == tmp_path / "cache" / "corpora"
    assert remote.manifest_sha256 == local.manifest_sha256 and verify(remote.folder) == []
    a, b = ScaleTokens(local, "150k"), ScaleTokens(remote, "150k")
    assert np.array_equal(a.window(0, a.num_tokens), b.window(0, b.num_tokens))

    # Fetched once: opened again, the copy is used and the bucket's shards are not read.
    (Location.of(url) / "shards" / local.manifest.shards[0].path).unlink()
    assert Corpus(url).folder == remote.folder
    # A run's config keeps the URL (each node fetches its own copy), not a path made from it.
    cfg = load_train_config(REPO / "configs/train/sample.yaml", [f"data.corpus={url}"]).resolve_paths()
    assert cfg.data.corpus == url


def test_an_object_that_differs_from_the_manifest_is_refused(s3, sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    url = upload_corpus(s3, sample_corpus, "corpora/changed")
    name = Corpus(sample_corpus).manifest.shards[1].path
    (Location.of(url) / "shards" / name).write_bytes(b"not the shard the manifest names")
    with pytest.raises(DataError, match=rf"shards/{name}: sha256 differs from the manifest"):
        Corpus(url)
    assert list((tmp_path / "cache" / "corpora").iterdir()) == []  # no half copy left behind
    with pytest.raises(DataError, match="no manifest.json"):
        Corpus(s3.url("corpora/none"))
