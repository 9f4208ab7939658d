"""Every tokenized document marked validation, decontaminated or train: one Ray task per token file.

Each task reads its file batch by batch, writes the file's training documents (still in key order)
for the training stream to merge, and returns only counts and the removed documents' rows, so
neither a task nor the driver ever holds a whole file of tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from scalelab.core.atomic import atomic_path, write_parquet
from scalelab.core.storage import Location, parquet_file
from scalelab.pipelines.config import DecontaminationConfig
from scalelab.pipelines.shards.decontamination import (
    DecontaminationReport,
    ValidationNgrams,
    is_contaminated,
    overlap,
    validation_ngram_counts,
)
from scalelab.pipelines.shards.key_order import BATCH_ROWS, token_lists

SPLITS = ("validation", "train", "decontaminated")
TRAIN_COLUMNS = ["key", "id", "lang", "tokens"]
REMOVED_SCHEMA = pa.schema([("id", pa.string()), ("n_tokens", pa.int64()), ("matched", pa.int64()),
                            ("counted", pa.int64())])


@dataclass
class FileSplit:
    """What one token file gave: per split, documents, tokens and documents sharing an n-gram with validation."""

    documents: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)
    overlapping: Counter = field(default_factory=Counter)
    removed: pa.Table = field(default_factory=REMOVED_SCHEMA.empty_table)  # the decontaminated documents

    def add(self, other: "FileSplit") -> None:
        self.documents.update(other.documents)
        self.tokens.update(other.tokens)
        self.overlapping.update(other.overlapping)
        self.removed = pa.concat_tables([self.removed, other.removed])


@dataclass(frozen=True)
class Split:
    """The whole corpus's split, with the counts the manifest records; training files in key order."""

    train_files: list[str]
    docs_by_split: dict[str, int]
    train_tokens: int
    decontamination: DecontaminationReport


def ngram_frequency(token_files: list[str], validation: np.ndarray, n: int) -> np.ndarray:
    """How many documents of the corpus hold each validation n-gram (a task per file, summed)."""
    task = ray.remote(max_retries=3)(_file_ngram_counts)
    validation_ref = ray.put(validation)
    frequency = np.zeros(len(validation), np.int64)
    for index, documents in ray.get([task.remote(f, validation_ref, n) for f in token_files]):
        np.add.at(frequency, index, documents)
    return frequency


def _file_ngram_counts(path: str, validation: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    index, documents = [], []
    for batch in parquet_file(Location.of(path)).iter_batches(batch_size=BATCH_ROWS, columns=["tokens"]):
        counts = validation_ngram_counts(pa.Table.from_batches([batch]), validation, n)
        index.append(counts.column("index").to_numpy())
        documents.append(counts.column("documents").to_numpy())
    empty = np.empty(0, np.int64)
    return (np.concatenate(index) if index else empty), (np.concatenate(documents) if documents else empty)


def split_corpus(token_files: list[str], train_files: list[str], validation_ids: list[str],
                 ngrams: ValidationNgrams | None, cfg: DecontaminationConfig, validation_ngrams: int,
                 removed_path: Location) -> Split:
    """Mark every file in a task of its own; sum their counts; write stats/decontaminated.parquet."""
    task = ray.remote(max_retries=3)(_split_file)
    ids_ref, ngrams_ref = ray.put(validation_ids), ray.put(ngrams)
    total = FileSplit()
    for part in ray.get([task.remote(src, dst, ids_ref, ngrams_ref, cfg) for src, dst in zip(token_files, train_files)]):
        total.add(part)
    _write_removed(total.removed, removed_path)
    docs_by_split = {s: int(total.documents[s]) for s in SPLITS}  # fixed keys in a fixed order
    report = DecontaminationReport(
        enabled=cfg.enabled, ngram=cfg.ngram, min_overlap_fraction=cfg.min_overlap_fraction,
        max_ngram_doc_frequency=cfg.max_ngram_doc_frequency, documents=docs_by_split["decontaminated"],
        tokens=int(total.tokens["decontaminated"]), documents_overlapping_kept=int(total.overlapping["train"]),
        validation_ngrams=validation_ngrams, frequent_ngrams=len(ngrams.frequent) if ngrams else 0)
    return Split(train_files=train_files, docs_by_split=docs_by_split, train_tokens=int(total.tokens["train"]),
                 decontamination=report)


def _split_file(src: str, dst: str, validation_ids: list[str], ngrams: ValidationNgrams | None,
                cfg: DecontaminationConfig) -> FileSplit:
    result = FileSplit()
    removed: list[pa.Table] = []
    value_set = pa.array(validation_ids, pa.string())
    source = parquet_file(Location.of(src))
    train_schema = pa.schema([source.schema_arrow.field(name) for name in TRAIN_COLUMNS])
    with atomic_path(dst) as tmp, pq.ParquetWriter(tmp, train_schema, compression="zstd") as writer:
        for batch in source.iter_batches(batch_size=BATCH_ROWS):
            marked = _mark(pa.Table.from_batches([batch]), value_set, ngrams, cfg)
            by_split = {split: marked.filter(pc.equal(marked.column("split"), split)) for split in SPLITS}
            for split, rows in by_split.items():
                result.documents[split] += rows.num_rows
                result.tokens[split] += pc.sum(rows.column("n_tokens")).as_py() or 0
                result.overlapping[split] += pc.sum(rows.column("overlapping")).as_py() or 0
            removed.append(by_split["decontaminated"].select(REMOVED_SCHEMA.names).cast(REMOVED_SCHEMA))
            writer.write_table(by_split["train"].select(TRAIN_COLUMNS), row_group_size=BATCH_ROWS)
    result.removed = pa.concat_tables(removed) if removed else REMOVED_SCHEMA.empty_table()
    return result


def _mark(batch: pa.Table, validation_ids: pa.Array, ngrams: ValidationNgrams | None,
          cfg: DecontaminationConfig) -> pa.Table:
    """Each document's split and its overlap with validation: `matched` of its `counted` n-grams
    (0 and 0 when decontamination is off)."""
    is_val = pc.is_in(batch.column("id"), value_set=validation_ids).to_numpy(zero_copy_only=False)
    flat, offsets = token_lists(batch)
    split, matched, counted = [], [], []
    for i in range(batch.num_rows):
        o = overlap(flat[offsets[i] : offsets[i + 1] - 1], ngrams, cfg.ngram) if ngrams and not is_val[i] else None
        split.append("validation" if is_val[i] else "decontaminated" if o and is_contaminated(o, cfg) else "train")
        matched.append(o.matched if o else 0)
        counted.append(o.counted if o else 0)
    return (batch.append_column("split", pa.array(split, pa.string()))
            .append_column("matched", pa.array(matched, pa.int64()))
            .append_column("counted", pa.array(counted, pa.int64()))
            .append_column("overlapping", pa.array([int(m > 0) for m in matched], pa.int64())))


def _write_removed(removed: pa.Table, path: Location) -> None:
    """stats/decontaminated.parquet: each removed document, its tokens and its overlap, by id."""
    table = removed.take(pc.sort_indices(removed, sort_keys=[("id", "ascending")]))
    table = table.append_column("overlap", pc.divide(pc.cast(table["matched"], pa.float64()), table["counted"]))
    write_parquet(path, table)
