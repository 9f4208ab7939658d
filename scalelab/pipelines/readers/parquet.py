"""Parquet files, read a record batch at a time with only the columns the config names."""

from __future__ import annotations

from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.inputs import InputFile
from scalelab.pipelines.readers.common import open_binary, unreadable
from scalelab.pipelines.readers.jsonl import record_document


def read_parquet(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    # Every column when its other fields go to `metadata`; else only the named ones (and `id`).
    wanted = [c for c in (f.text_field, f.id_field or "id", f.url_field, f.date_field) if c]
    offset = 0
    try:
        with open_binary(f.uri) as stream:
            pf = pq.ParquetFile(stream)
            columns = None if f.metadata else [c for c in dict.fromkeys(wanted) if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(columns=columns, batch_size=1024):
                for row in batch.to_pylist():
                    text = row.get(f.text_field)
                    size = len(text.encode("utf-8")) if isinstance(text, str) else 0
                    yield record_document(f, cfg, row, offset, size)
                    offset += 1
    except (OSError, pa.ArrowException) as exc:  # a corrupt page: count the rest of the file as one unreadable record
        yield unreadable(f.key, f"tail@{offset}", f"{type(exc).__name__}: {exc}")
