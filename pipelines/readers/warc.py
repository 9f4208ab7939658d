"""WARC, WET and ARC files (plain or gzip) through warcio, which also reads ARC and many broken files.

`response`, `resource` and `conversion` (WET) records are documents. Other records (requests,
metadata, revisits, warcinfo) are counted as `not_a_document` so every record is accounted for.
A file that breaks part way (truncated gzip, bad framing) yields one `unreadable_record` for the
unread remainder, after every record before the break.
"""

from __future__ import annotations

from typing import Any, Iterator

from warcio.archiveiterator import ArchiveIterator

from pipelines.config import ExtractConfig
from pipelines.inputs import InputFile
from pipelines.readers.common import READ_STAGE, document_id, open_binary, unreadable
from pipelines.schema import drop, new_document

DOCUMENT_RECORDS = {"response", "resource", "conversion"}


def _read_payload(record: Any, max_bytes: int) -> tuple[bytes | None, str | None]:
    """The record's body (HTTP chunking and content encodings undone), or the error reading it."""
    if record.rec_type not in DOCUMENT_RECORDS:
        return None, None
    try:
        return record.content_stream().read(max_bytes + 1), None
    except Exception as exc:  # warcio raises several types on broken chunking or encodings
        return None, f"{type(exc).__name__}: {exc}"


def _record_document(
    f: InputFile, record: Any, offset: int, payload: bytes | None, error: str | None, max_bytes: int, http_ok_only: bool
) -> dict[str, Any]:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    date = headers.get_header("WARC-Date")
    rec_type = record.rec_type
    doc_id = document_id(f.key, offset)

    if rec_type not in DOCUMENT_RECORDS:
        doc = new_document(id=doc_id, source=f.key, url=url, date=date)
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
        return unreadable(f.key, offset, error or "no payload", url=url)

    doc = new_document(
        id=doc_id, source=f.key, url=url, date=date, content_type=content_type,
        raw=payload, raw_bytes=len(payload),
    )
    if len(payload) > max_bytes:
        doc["raw"] = None
        return drop(doc, READ_STAGE, "too_large", f">{max_bytes} bytes")
    if http_ok_only and status is not None and status != "200":
        doc["raw"] = None  # redirects and error pages: counted, not extracted
        return drop(doc, READ_STAGE, "http_status", status)
    return doc


def read_warc(f: InputFile, cfg: ExtractConfig) -> Iterator[dict[str, Any]]:
    try:
        stream = open_binary(f.uri)
    except OSError as exc:
        yield unreadable(f.key, 0, f"cannot open: {exc}")
        return
    with stream:
        it = ArchiveIterator(stream, arc2warc=True, check_digests=False)
        last_offset = 0
        while True:
            try:
                record = next(it)
            except StopIteration:
                return
            except Exception as exc:  # truncated gzip, broken framing: the rest is unreadable
                yield unreadable(f.key, f"tail@{last_offset}", f"{type(exc).__name__}: {exc}")
                return
            # The body must be read before asking for the offset: warcio skips it otherwise.
            payload, error = _read_payload(record, cfg.max_bytes)
            offset = it.get_record_offset()
            last_offset = offset
            yield _record_document(f, record, offset, payload, error, cfg.max_bytes, cfg.http_ok_only)
