"""Decontamination: a training document that is largely validation text is set aside.

A document's n-grams are the 64-bit hashes of its distinct token n-grams (13 by default). A training
document is removed when at least `min_overlap_fraction` of them occur in the validation set.
N-grams that occur in more than `max_ngram_doc_frequency` documents of the corpus are left out of
both counts: navigation, licence headers and templates recur on every page of a site, and sharing
them with a validation page says nothing about having seen that page.

Two passes over the tokenized corpus, both integer counts, so the result doesn't depend on the
number of workers or the order of batches:
1. the document frequency of every validation n-gram (`validation_ngram_counts`, summed);
2. each training document's overlap (`overlap`) against the validation n-grams that stay counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from scalelab.pipelines.config import DecontaminationConfig


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every token n-gram of one document (none if it is shorter than n)."""
    if len(tokens) < n:
        return np.empty(0, np.uint64)
    t = tokens.astype(np.uint64) + np.uint64(1)
    h = np.zeros(len(t) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = (h ^ t[j : j + len(h)]) * np.uint64(0x100000001B3)
    return h


def contains(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Which of x are in sorted_values (a binary search each: the validation set is searched once
    per document, so it is never re-sorted as np.isin would)."""
    if len(sorted_values) == 0:
        return np.zeros(len(x), bool)
    pos = np.minimum(np.searchsorted(sorted_values, x), len(sorted_values) - 1)
    return sorted_values[pos] == x


def _documents(batch: pa.Table):
    """Each row's tokens without the end-of-document token."""
    col = batch.column("tokens").combine_chunks()
    flat, offsets = col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy()
    for i in range(batch.num_rows):
        yield flat[offsets[i] : offsets[i + 1] - 1]


def validation_ngram_counts(batch: pa.Table, validation: np.ndarray, n: int) -> pa.Table:
    """(index into `validation`, documents of this batch that contain it), for the n-grams present."""
    counts = np.zeros(len(validation), np.int64)
    for tokens in _documents(batch):
        grams = np.unique(ngram_hashes(tokens, n))
        counts[np.searchsorted(validation, grams[contains(validation, grams)])] += 1
    present = np.flatnonzero(counts)
    return pa.table({"index": pa.array(present, pa.int64()), "documents": pa.array(counts[present], pa.int64())})


@dataclass(frozen=True)
class ValidationNgrams:
    """The validation set's n-grams, split by their document frequency in the whole corpus."""

    counted: np.ndarray  # sorted; in at most max_ngram_doc_frequency documents
    frequent: np.ndarray  # sorted; in more: left out of every overlap

    @classmethod
    def split(cls, validation: np.ndarray, doc_frequency: np.ndarray, cap: int) -> "ValidationNgrams":
        return cls(counted=validation[doc_frequency <= cap], frequent=validation[doc_frequency > cap])


@dataclass(frozen=True)
class Overlap:
    matched: int  # the document's n-grams found in validation (frequent ones left out)
    counted: int  # the document's n-grams (frequent validation n-grams left out)

    @property
    def share(self) -> float:
        return self.matched / self.counted if self.counted else 0.0


def overlap(tokens: np.ndarray, ngrams: ValidationNgrams, n: int) -> Overlap:
    grams = np.unique(ngram_hashes(tokens, n))
    frequent = int(contains(ngrams.frequent, grams).sum())
    return Overlap(matched=int(contains(ngrams.counted, grams).sum()), counted=len(grams) - frequent)


def is_contaminated(o: Overlap, cfg: DecontaminationConfig) -> bool:
    return o.matched > 0 and o.share >= cfg.min_overlap_fraction


@dataclass
class DecontaminationReport:
    """What decontamination removed and why, for the manifest and the build summary."""

    enabled: bool
    ngram: int
    min_overlap_fraction: float
    max_ngram_doc_frequency: int
    documents: int = 0  # training documents removed
    tokens: int = 0  # their tokens
    documents_overlapping_kept: int = 0  # share some counted n-grams, under the fraction: kept
    validation_ngrams: int = 0
    frequent_ngrams: int = 0  # validation n-grams left out as too common

    def as_dict(self) -> dict:
        return asdict(self)
