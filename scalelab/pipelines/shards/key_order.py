"""The corpus's one order: documents by a seeded hash of their id (then the id), whatever the number of workers.

Each tokenize unit writes its file already sorted so; a pass over the whole corpus in that order is
a k-way merge of the files that holds one batch per file. Memory is set by the batch size and the
number of files, never by the size of the corpus, and no worker ever sees the whole of it.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import pyarrow as pa

from scalelab.core.storage import Location, parquet_file

BATCH_ROWS = 1024


class KeyOrderError(ValueError):
    """A token file that is not in key order (written by a scalelab from before files were sorted)."""


def document_key(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest(), "big")


def sorted_by_key(table: pa.Table) -> pa.Table:
    return table.sort_by([("key", "ascending"), ("id", "ascending")])


@dataclass(frozen=True)
class RowBatch:
    """One batch of a token file: its columns as Python lists, the token lists as (flat, offsets)."""

    columns: dict[str, list]
    flat: Optional[np.ndarray]
    offsets: Optional[np.ndarray]

    @classmethod
    def of(cls, batch: pa.RecordBatch | pa.Table) -> "RowBatch":
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        columns = {name: table.column(name).to_pylist() for name in table.column_names if name != "tokens"}
        if "tokens" not in table.column_names:
            return cls(columns, None, None)
        flat, offsets = token_lists(table)
        return cls(columns, flat, offsets)

    def tokens(self, row: int) -> np.ndarray:
        return self.flat[self.offsets[row] : self.offsets[row + 1]]


def token_lists(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The `tokens` list column as (flat values, offsets)."""
    col = table.column("tokens").combine_chunks()
    return col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy()


def _file_rows(file_no: int, path: str, columns: list[str]) -> Iterator[tuple[int, str, int, int, RowBatch]]:
    previous: tuple[int, str] = (-1, "")
    for batch in parquet_file(Location.of(path)).iter_batches(batch_size=BATCH_ROWS, columns=columns):
        rows = RowBatch.of(batch)
        for row, (key, doc_id) in enumerate(zip(rows.columns["key"], rows.columns["id"])):
            if (key, doc_id) < previous:
                raise KeyOrderError(f"{path}: documents are not in key order (the file is from an older "
                                    f"scalelab); delete its folder's phase/tokenize and phase/shards and rerun")
            previous = (key, doc_id)
            # (key, id) is unique in a corpus; the file and row numbers keep tuples from ever comparing batches
            yield key, doc_id, file_no, row, rows


def in_key_order(files: list[str], columns: list[str]) -> Iterator[tuple[RowBatch, int]]:
    """Every row of the sorted files as (its batch, its row), in (key, id) order across all of them."""
    columns = list(dict.fromkeys(["key", "id", *columns]))
    streams = [_file_rows(n, path, columns) for n, path in enumerate(files)]
    for _, _, _, row, rows in heapq.merge(*streams):
        yield rows, row
