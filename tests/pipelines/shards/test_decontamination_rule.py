"""The decontamination rule on real templated documents without a build: GNU coreutils man pages
(tests/data/manpages/), which all end in the same help2man boilerplate (bugs, copyright, licence,
"see also"). Words stand in for tokens; the functions are the ones the shards stage calls.
"""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pytest

from scalelab.pipelines.config import DecontaminationConfig
from scalelab.pipelines.shards.decontamination import (
    ValidationNgrams,
    is_contaminated,
    ngram_hashes,
    overlap,
    validation_ngram_counts,
)
from tests.conftest import DATA

VALIDATION = ("cp", "ls", "mkdir", "tail")


def pages() -> dict[str, str]:
    return {p.name.split(".")[0]: gzip.open(p, "rt", encoding="utf-8").read()
            for p in sorted((DATA / "manpages").glob("*.1.gz"))}


def edited(text: str) -> str:
    """A lightly edited copy: every 25th word replaced, a line added."""
    words = text.split(" ")
    return "Copied from the coreutils manual.\n" + " ".join("X" if i % 25 == 24 else w for i, w in enumerate(words))


def removed(docs: dict[str, str], cfg: DecontaminationConfig) -> dict[str, float]:
    """{name: overlap share} of the non-validation documents the rule removes."""
    vocab: dict[str, int] = {}
    tokens = {k: np.array([vocab.setdefault(w, len(vocab)) for w in t.split()], np.uint32) for k, t in docs.items()}
    validation = np.unique(np.concatenate([ngram_hashes(tokens[k], cfg.ngram) for k in VALIDATION]))
    # The stage's batch layout: token lists, each ending with an end-of-document token.
    batch = pa.table({"tokens": pa.array([np.append(t, 0).tolist() for t in tokens.values()], pa.large_list(pa.uint32()))})
    counts = validation_ngram_counts(batch, validation, cfg.ngram)
    frequency = np.zeros(len(validation), np.int64)
    frequency[counts["index"].to_numpy()] = counts["documents"].to_numpy()
    ngrams = ValidationNgrams.split(validation, frequency, cfg.max_ngram_doc_frequency)
    overlaps = {k: overlap(t, ngrams, cfg.ngram) for k, t in tokens.items() if k not in VALIDATION}
    return {k: o.share for k, o in overlaps.items() if is_contaminated(o, cfg)}


def test_shared_boilerplate_is_not_contamination():
    docs = pages()
    assert len(docs) >= 40
    assert removed(docs, DecontaminationConfig()) == {}
    # Counting the boilerplate, `yes` (a short page) is half "validation text".
    counting_all = removed(docs, DecontaminationConfig(max_ngram_doc_frequency=10**9))
    assert "yes" in counting_all, counting_all
    # And one shared 13-gram (the old rule) removed every page.
    any_ngram = removed(docs, DecontaminationConfig(max_ngram_doc_frequency=10**9, min_overlap_fraction=1e-9))
    assert len(any_ngram) == len(docs) - len(VALIDATION)


@pytest.mark.parametrize("name", VALIDATION)
def test_a_copied_and_an_edited_validation_page_are_removed(name):
    docs = pages()
    docs |= {"copy": docs[name], "edited": edited(docs[name])}
    got = removed(docs, DecontaminationConfig())
    assert set(got) == {"copy", "edited"}, got
    assert got["copy"] == 1.0 and 0.5 <= got["edited"] < 1.0
