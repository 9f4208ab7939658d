"""The document record that flows through a corpus build, and the Arrow schemas of its outputs.

A document is a plain dict while a step works on it. It is never removed from the stream:
a step that rejects it sets `drop_stage` and `drop_reason`, later steps skip it, and the final
partition writer counts it. That is what makes `in = kept + sum(dropped)` hold by construction.
"""

from __future__ import annotations

from typing import Any, Optional

import pyarrow as pa

# Columns of the rows that leave the per-document steps and go through the final shuffle.
# (While steps run, a document is a dict that also holds `raw` and `content_type`.)
STREAM_SCHEMA = pa.schema(
    [
        ("id", pa.string()),  # the build's: from the input's key and the record's place in it
        ("source_id", pa.string()),  # the input's own: JSONL/Parquet id field, WARC-Record-ID
        ("source", pa.string()),  # input file, relative to its input's base
        ("url", pa.string()),
        ("date", pa.string()),
        ("text", pa.large_string()),  # null for dropped documents unless output.write_rejected
        ("metadata", pa.large_string()),  # the input's other fields, canonical JSON (readers/identity.py)
        ("raw_bytes", pa.int64()),  # payload size as read: the unit `bytes` is counted in
        ("lang", pa.string()),
        ("lang_score", pa.float64()),
        ("pii_email", pa.int32()),
        ("pii_ip", pa.int32()),
        ("pii_phone", pa.int32()),
        ("drop_stage", pa.string()),
        ("drop_reason", pa.string()),
        ("drop_detail", pa.string()),
        ("text_hash", pa.binary(16)),  # of the normalized text, for exact dedup (kept documents)
        ("partition", pa.int64()),  # hash partition of the final shuffle
    ]
)

# `OUT/documents/*.parquet`
DOCUMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("url", pa.string()),
        ("date", pa.string()),
        ("source", pa.string()),
        ("lang", pa.string()),
        ("lang_score", pa.float64()),
        ("source_id", pa.string()),
        ("metadata", pa.large_string()),
    ]
)

# `OUT/phase/exact_kept/*.parquet`: documents after exact dedup, waiting for near-dedup
STAGED_SCHEMA = pa.schema(
    list(DOCUMENT_SCHEMA)
    + [("raw_bytes", pa.int64()), ("pii_email", pa.int32()), ("pii_ip", pa.int32()), ("pii_phone", pa.int32())]
)

# `OUT/rejected/*.parquet` (only with output.write_rejected)
REJECTED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("url", pa.string()),
        ("source", pa.string()),
        ("lang", pa.string()),
        ("drop_stage", pa.string()),
        ("drop_reason", pa.string()),
        ("drop_detail", pa.string()),
        ("cluster_id", pa.string()),  # for duplicates: the id of the copy that was kept
        ("source_id", pa.string()),
        ("metadata", pa.large_string()),
    ]
)

# `OUT/stats/drops.parquet`
DROPS_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("documents", pa.int64()),
        ("bytes", pa.int64()),
    ]
)


def new_document(
    *,
    id: str,
    source: str,
    url: Optional[str] = None,
    date: Optional[str] = None,
    content_type: Optional[str] = None,
    raw: Optional[bytes] = None,
    text: Optional[str] = None,
    raw_bytes: int = 0,
    source_id: Optional[str] = None,
    metadata: Optional[str] = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "source_id": source_id,
        "metadata": metadata,
        "source": source,
        "url": url,
        "date": date,
        "content_type": content_type,
        "raw": raw,
        "text": text,
        "raw_bytes": raw_bytes,
        "lang": None,
        "lang_score": None,
        "pii_email": 0,
        "pii_ip": 0,
        "pii_phone": 0,
        "drop_stage": None,
        "drop_reason": None,
        "drop_detail": None,
    }


def drop(doc: dict[str, Any], stage: str, reason: str, detail: Optional[str] = None) -> dict[str, Any]:
    doc["drop_stage"] = stage
    doc["drop_reason"] = reason
    doc["drop_detail"] = detail
    return doc


def to_stream_table(docs: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [d.get(name) for d in docs] for name in STREAM_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=STREAM_SCHEMA)
