"""JSON Lines (plain, .gz or .zst): one document per line, text from a configured field."""

from __future__ import annotations

import json
from typing import Any, Iterator

from pipelines.config import ExtractConfig
from pipelines.inputs import InputFile
from pipelines.readers.common import READ_STAGE, document_id, open_decompressed, unreadable
from pipelines.readers.identity import row_identity
from pipelines.schema import drop, new_document


def record_document(f: InputFile, cfg: ExtractConfig, row: dict[str, Any], offset: int, raw_bytes: int) -> dict[str, Any]:
    """A document from a JSONL or Parquet row; shared so both sources treat fields the same way."""
    source_id, metadata = row_identity(f, row)
    doc = new_document(
        id=document_id(f.key, offset),
        source_id=source_id,
        metadata=metadata,
        source=f.key,
        url=str(row[f.url_field]) if f.url_field and row.get(f.url_field) is not None else f"{f.key}#{offset}",
        date=str(row[f.date_field]) if f.date_field and row.get(f.date_field) is not None else None,
        content_type="text/plain",
        raw_bytes=raw_bytes,
    )
    text = row.get(f.text_field)
    if not isinstance(text, str):
        got = "missing" if text is None else type(text).__name__
        return drop(doc, READ_STAGE, "unreadable_record", f"text field {f.text_field!r} is {got}")
    if raw_bytes > cfg.max_bytes:
        return drop(doc, READ_STAGE, "too_large", f">{cfg.max_bytes} bytes")
    doc["text"] = text
    return doc


def read_jsonl(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    line_no = -1
    try:
        with open_decompressed(f.uri) as stream:
            for line_no, line in enumerate(stream):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError(f"a JSON {type(row).__name__}, not an object")
                except ValueError as exc:  # JSONDecodeError and bad UTF-8 both land here
                    yield unreadable(f.key, line_no, f"line {line_no + 1}: {exc}", raw_bytes=len(line))
                    continue
                yield record_document(f, cfg, row, line_no, len(line))
    except (OSError, EOFError) as exc:
        # A cut .gz/.zst: the lines before the break were whole and are kept; the line being
        # read and anything after it are lost, counted here as one record.
        yield unreadable(f.key, f"tail@{line_no + 1}", f"{type(exc).__name__}: {exc} (after line {line_no + 1})")
