"""JSON Lines (plain, .gz or .zst): one document per line, text from a configured field."""

from __future__ import annotations

import io
import json
from typing import IO, Any, Iterator, Optional

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.inputs import InputFile
from scalelab.pipelines.readers.common import READ_STAGE, document_id, open_decompressed, unreadable
from scalelab.pipelines.readers.identity import row_identity
from scalelab.pipelines.schema import drop, new_document
from scalelab.pipelines.text_encoding import WIDTH_CODEC, bom_encoding, wide_without_bom


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


def _parse(line: str | bytes) -> dict[str, Any]:
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError(f"a JSON {type(row).__name__}, not an object")
    return row


def _lines(stream: IO[bytes]) -> tuple[Optional[str], Iterator[str | bytes]]:
    """The file's lines: bytes for UTF-8 (json decodes them, a BOM included), str when a byte-order
    mark names UTF-16 or UTF-32; the codec is None for UTF-8 and "" for wide text without a mark."""
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    head = buffered.peek(256)[:256]
    codec = bom_encoding(head)
    if codec in ("utf-16", "utf-32"):
        # newline="\n": a line ends at a line feed only, as in the UTF-8 case (not at U+2028).
        return codec, io.TextIOWrapper(buffered, encoding=codec, newline="\n")  # type: ignore[arg-type]
    return ("" if wide_without_bom(head) else None), iter(buffered)


def read_jsonl(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    line_no = -1
    try:
        with open_decompressed(f.uri) as stream:
            codec, lines = _lines(stream)
            if codec == "":  # remote files skip the driver's check: refuse the whole file here
                yield unreadable(f.key, "encoding", "UTF-16 or UTF-32 without a byte-order mark; save it as UTF-8")
                return
            width = WIDTH_CODEC.get(codec or "")
            for line_no, line in enumerate(lines):
                if not line.strip():
                    continue
                raw_bytes = len(line.encode(width)) if width and isinstance(line, str) else len(line)
                try:
                    row = _parse(line)
                except ValueError as exc:  # JSONDecodeError and bad UTF-8 both land here
                    yield unreadable(f.key, line_no, f"line {line_no + 1}: {exc}", raw_bytes=raw_bytes)
                    continue
                yield record_document(f, cfg, row, line_no, raw_bytes)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        # A cut .gz/.zst or broken UTF-16: the lines before the break were whole and are kept; the
        # line being read and anything after it are lost, counted here as one record.
        yield unreadable(f.key, f"tail@{line_no + 1}", f"{type(exc).__name__}: {exc} (after line {line_no + 1})")
