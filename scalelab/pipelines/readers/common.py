"""What every reader shares: opening local or remote files, and stable document ids."""

from __future__ import annotations

import gzip
import io
import hashlib
from typing import IO, Any, Optional

import fsspec

from scalelab.pipelines.schema import drop, new_document

READ_STAGE = "read"


def document_id(key: str, offset: int | str) -> str:
    """Stable id from the input's key and the record's offset: same input, same id, any machine."""
    return hashlib.blake2b(f"{key}\0{offset}".encode(), digest_size=10).hexdigest()


def open_binary(uri: str) -> IO[bytes]:
    return fsspec.open(uri, "rb").open()


def open_decompressed(uri: str) -> IO[bytes]:
    """Open a file and undo gzip or zstd, judged by its magic bytes rather than its name.
    Both raise EOFError where a cut file ends mid-stream."""
    raw = open_binary(uri)
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        from scalelab.pipelines.readers.zstd_stream import ZstdStream

        return io.BufferedReader(ZstdStream(raw))  # type: ignore[arg-type]  # line iteration for JSONL
    return raw


def unreadable(key: str, offset: int | str, detail: str, url: Optional[str] = None, raw_bytes: int = 0) -> dict[str, Any]:
    doc = new_document(id=document_id(key, offset), source=key, url=url, raw_bytes=raw_bytes)
    return drop(doc, READ_STAGE, "unreadable_record", detail[:500])
