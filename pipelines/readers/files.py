"""Whole files as documents: an HTML page or a plain-text file (optionally gzip or zstd)."""

from __future__ import annotations

from typing import Any, Iterator

from pipelines.config import ExtractConfig
from pipelines.inputs import InputFile
from pipelines.readers.common import READ_STAGE, document_id, open_decompressed, unreadable
from pipelines.schema import drop, new_document


def _read_whole(f: InputFile, cfg: ExtractConfig, content_type: str) -> Iterator[dict[str, Any]]:
    try:
        with open_decompressed(f.uri) as stream:
            payload = stream.read(cfg.max_bytes + 1)
    except (OSError, EOFError) as exc:
        yield unreadable(f.key, 0, f"{type(exc).__name__}: {exc}", url=f.key)
        return
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
