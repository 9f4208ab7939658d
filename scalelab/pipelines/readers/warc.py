"""WARC, WET and ARC files (plain or gzip) through warcio, which also reads ARC and many broken files.

`response`, `resource` and `conversion` (WET) records are documents. Other records (requests,
metadata, revisits, warcinfo) are counted as `not_a_document` so every record is accounted for.

A file cut short (a truncated download, a gzip member cut) is read up to the cut: every whole
record before it is kept as usual; the record the cut falls in is an `unreadable_record` (with
how many of its bytes are missing), whatever its type; bytes after the last whole record that
form no record, or a break warcio cannot read past, are one more `unreadable_record` for the
rest of the file. warcio itself hands a cut record over as if it were whole.
"""

from __future__ import annotations

import io
from typing import Any, Iterator, Optional

from warcio.archiveiterator import ArchiveIterator

from scalelab.pipelines.config import ExtractConfig
from scalelab.pipelines.inputs import InputFile, file_head
from scalelab.pipelines.readers.common import READ_STAGE, document_id, open_binary, unreadable
from scalelab.pipelines.readers.identity import warc_identity
from scalelab.pipelines.schema import drop, new_document

DOCUMENT_RECORDS = {"response", "resource", "conversion"}
DRAIN = 1 << 16


def _read_payload(record: Any, max_bytes: int) -> tuple[bytes | None, str | None]:
    """The record's body (HTTP chunking and content encodings undone), or the error reading it."""
    if record.rec_type not in DOCUMENT_RECORDS:
        return None, None
    try:
        return record.content_stream().read(max_bytes + 1), None
    except Exception as exc:  # warcio raises several types on broken chunking or encodings
        return None, f"{type(exc).__name__}: {exc}"


def _missing_bytes(record: Any) -> Optional[int]:
    """Read the record's block to its end; how many of its declared bytes the file lacks
    (0 for a whole record), or None when its header block itself is incomplete."""
    if record.rec_type is None or record.length is None:
        return None
    raw = record.raw_stream
    while raw.read(DRAIN):
        pass
    return int(getattr(raw, "limit", 0) or 0)


def _cut_record(f: InputFile, record: Any, offset: int, missing: Optional[int], payload: bytes | None,
                is_arc: bool) -> dict[str, Any]:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    if missing is None:
        detail = f"record at byte {offset}: its header block is incomplete (file cut short?)"
    else:
        detail = f"{record.rec_type} record at byte {offset}: {missing} of its {record.length} bytes missing (file cut short)"
    doc = unreadable(f.key, offset, detail, url=url, raw_bytes=len(payload or b""))
    doc["source_id"], doc["metadata"] = warc_identity(f, headers, is_arc)
    return doc


def _record_document(
    f: InputFile, record: Any, offset: int, payload: bytes | None, error: str | None, cfg: ExtractConfig, is_arc: bool
) -> dict[str, Any]:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    date = headers.get_header("WARC-Date")
    rec_type = record.rec_type
    source_id, metadata = warc_identity(f, headers, is_arc)
    doc = new_document(id=document_id(f.key, offset), source_id=source_id, metadata=metadata,
                       source=f.key, url=url, date=date)
    if rec_type not in DOCUMENT_RECORDS:
        return drop(doc, READ_STAGE, "not_a_document", rec_type)

    http = record.http_headers
    if http is not None and rec_type == "response":
        content_type = http.get_header("Content-Type") or ""
        status = http.get_statuscode()
    else:
        content_type = headers.get_header("Content-Type") or ""
        status = None
    if rec_type == "conversion" and not content_type:
        content_type = "text/plain"

    if payload is None:
        return drop(doc, READ_STAGE, "unreadable_record", (error or "no payload")[:500])

    doc.update(content_type=content_type, raw=payload, raw_bytes=len(payload))
    if len(payload) > cfg.max_bytes:
        doc["raw"] = None
        return drop(doc, READ_STAGE, "too_large", f">{cfg.max_bytes} bytes")
    if cfg.http_ok_only and status is not None and status != "200":
        doc["raw"] = None  # redirects and error pages: counted, not extracted
        return drop(doc, READ_STAGE, "http_status", status)
    return doc


def _file_size(stream: Any, f: InputFile) -> int:
    try:
        return stream.seek(0, io.SEEK_END)
    except (OSError, ValueError):
        return f.size


def read_warc(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    try:
        stream = open_binary(f.uri)
    except OSError as exc:
        yield unreadable(f.key, 0, f"cannot open: {exc}")
        return
    with stream:
        is_arc = file_head(f.uri).startswith(b"filedesc://")
        if f.start:
            stream.seek(f.start)  # a record starts here (readers/warc_index.py); warcio's offsets stay absolute
        it = ArchiveIterator(stream, arc2warc=True, check_digests=False)
        last = f.start  # offset of the last record read
        while True:
            try:
                record = next(it)
            except StopIteration:
                break
            except Exception as exc:  # broken framing, a gzip member cut in its header
                yield unreadable(f.key, f"tail@{last}", f"{type(exc).__name__}: {exc} (after the record at byte {last})")
                return
            # The body must be read before asking for the offset: warcio skips it otherwise.
            payload, error = _read_payload(record, cfg.max_bytes)
            missing = _missing_bytes(record)
            offset = last = it.get_record_offset()
            if f.end is not None and offset >= f.end:
                return  # the next part's first record
            if missing != 0:
                yield _cut_record(f, record, offset, missing, payload, is_arc)
            else:
                yield _record_document(f, record, offset, payload, error, cfg, is_arc)
        if f.end is not None:
            return  # only the last part of a file judges what follows its last record
        end = it.offset  # where the next record would start: the file's end if nothing is left
        size = _file_size(stream, f)
        if size > end:
            yield unreadable(f.key, f"tail@{end}", f"{size - end} bytes after the last whole record "
                                                   f"(byte {end}) are no readable record (file cut short?)")
