"""Whole files as documents: an HTML page or a plain-text file (optionally gzip or zstd).

The file is the record: a compressed file cut mid-stream is one `unreadable_record` (with the
bytes that did decompress), never a shorter document kept as if it were whole.
"""

from __future__ import annotations

from typing import Any, Iterator

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.inputs import InputFile
from scalelab.pipelines.readers.common import READ_STAGE, document_id, open_decompressed, unreadable
from scalelab.pipelines.schema import drop, new_document

CHUNK = 1 << 14  # small reads: a cut file still reports about how much did decompress


def _read_whole(f: InputFile, cfg: ExtractConfig, content_type: str) -> Iterator[dict[str, Any]]:
    chunks: list[bytes] = []
    size = 0
    try:
        with open_decompressed(f.uri) as stream:
            while size <= cfg.max_bytes:
                chunk = stream.read(min(CHUNK, cfg.max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except (OSError, EOFError) as exc:
        yield unreadable(f.key, 0, f"{type(exc).__name__}: {exc} (after {size} bytes)",
                         url=f.key, raw_bytes=size)
        return
    payload = b"".join(chunks)
    doc = new_document(
        id=document_id(f.key, 0), source=f.key, url=f.key, content_type=content_type,
        raw=payload, raw_bytes=len(payload),
    )
    if len(payload) > cfg.max_bytes:
        doc["raw"] = None
        yield drop(doc, READ_STAGE, "too_large", f">{cfg.max_bytes} bytes")
        return
    yield doc


def read_html_file(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    return _read_whole(f, cfg, "text/html")


def read_text_file(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    return _read_whole(f, cfg, "text/plain")
