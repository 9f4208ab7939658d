"""The document record that flows through a corpus build, and the Arrow schemas of its outputs.

A document is a `Document` (a typed dict) while a step works on it. It is never removed from the stream:
a step that rejects it sets `drop_stage` and `drop_reason`, later steps skip it, and the final
partition writer counts it. That is what makes `in = kept + sum(dropped)` hold by construction.
"""

from __future__ import annotations

from typing import Annotated, NamedTuple, Optional, TypedDict

import pyarrow as pa

from scalelab.core.arrow_schema import arrow_schema

LargeText = Annotated[str, pa.large_string()]  # a document's text can pass 2 GiB in one Arrow chunk
Count32 = Annotated[int, pa.int32()]


class DocumentFields(TypedDict):
    """The fields every document has, from its reader to the final shuffle (in column order)."""

    id: str                         # the build's: from the input's key and the record's place in it
    source_id: Optional[str]        # the input's own: JSONL/Parquet id field, WARC-Record-ID
    source: str                     # input file, relative to its input's base
    url: Optional[str]
    date: Optional[str]
    text: Optional[LargeText]       # null for dropped documents unless output.write_rejected
    metadata: Optional[LargeText]   # the input's other fields, canonical JSON (readers/identity.py)
    raw_bytes: int                  # payload size as read: the unit `bytes` is counted in
    lang: Optional[str]
    lang_score: Optional[float]
    pii_email: Count32
    pii_ip: Count32
    pii_phone: Count32
    drop_stage: Optional[str]       # where it was dropped (None: kept so far)
    drop_reason: Optional[str]
    drop_detail: Optional[str]


class Document(DocumentFields):
    """A document while the per-document steps work on it: also its payload as read."""

    content_type: Optional[str]
    raw: Optional[bytes]


class StreamRow(DocumentFields):
    """A document as it leaves the steps and goes through the final shuffle."""

    text_hash: Optional[Annotated[bytes, pa.binary(16)]]  # of the normalized text, for exact dedup (kept documents)
    partition: int                  # hash partition of the final shuffle


class DropRow(NamedTuple):
    """A row of `OUT/stats/drops.parquet`: how many documents (and bytes) a stage dropped, and why."""

    stage: str
    reason: str
    documents: int
    bytes: int


STREAM_SCHEMA = arrow_schema(StreamRow)

# `OUT/documents/*.parquet`
DOCUMENT_SCHEMA = arrow_schema(
    StreamRow, only=("id", "text", "url", "date", "source", "lang", "lang_score", "source_id", "metadata"))

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
DROPS_SCHEMA = arrow_schema(DropRow)


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
) -> Document:
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


def drop(doc: Document, stage: str, reason: str, detail: Optional[str] = None) -> Document:
    doc["drop_stage"] = stage
    doc["drop_reason"] = reason
    doc["drop_detail"] = detail
    return doc


def to_stream_table(docs: list[Document]) -> pa.Table:
    columns = {name: [d.get(name) for d in docs] for name in STREAM_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=STREAM_SCHEMA)
