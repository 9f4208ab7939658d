"""The input's own identity and fields, carried to the output beside the build's id.

The build's `id` is always derived from the file's key and the record's place in it: unique
and stable by construction, which exact dedup (smallest id wins), the partition order and the
shard index rely on. An input's own ids are kept as `source_id` instead, because nothing
makes them unique across files (two dumps both numbering from 1).

`metadata` holds the record's other fields as one canonical JSON object (keys sorted, no
spaces, UTF-8), or null. JSON rather than an Arrow map or struct: fields differ from file to
file and nest, a map would flatten every value to a string, and a canonical string keeps the
output byte-identical run to run; DuckDB and pandas read it with their JSON functions.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from typing import Any, Optional

from scalelab.pipelines.inputs import InputFile

# WARC headers that are already columns (url, date, source_id) or only frame the record.
_WARC_MAPPED = {"warc-record-id", "warc-target-uri", "warc-date", "content-length"}


def _plain(value: Any) -> Any:
    """A JSON-ready copy: Parquet's dates, decimals and bytes as text; NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def metadata_json(fields: dict[str, Any]) -> Optional[str]:
    return canonical_json(fields) if fields else None


def source_id_of(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value if isinstance(value, str) else canonical_json(value)


def id_field(f: InputFile, row: dict[str, Any]) -> Optional[str]:
    """The row's own id field: the configured one, else a field called `id` if there is one."""
    if f.id_field:
        return f.id_field
    return "id" if "id" in row else None


def row_identity(f: InputFile, row: dict[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """(source_id, metadata) of a JSONL or Parquet row: metadata is every field that has no
    column of its own (text, id, url, date)."""
    key = id_field(f, row)
    if not f.metadata:
        return source_id_of(row.get(key) if key else None), None
    mapped = {f.text_field, key, f.url_field, f.date_field}
    return source_id_of(row.get(key) if key else None), metadata_json({k: v for k, v in row.items() if k not in mapped})


def warc_identity(f: InputFile, headers: Any, is_arc: bool) -> tuple[Optional[str], Optional[str]]:
    """(WARC-Record-ID, the other WARC headers). ARC records have no id: warcio's conversion
    makes up a random one, which is neither the input's nor stable, so it is left out."""
    source_id = None if is_arc else headers.get_header("WARC-Record-ID")
    if not f.metadata:
        return source_id, None
    fields: dict[str, list[str]] = {}
    for name, value in headers.headers:
        if name.lower() not in _WARC_MAPPED:
            fields.setdefault(name, []).append(value)
    # A header may repeat (WARC-Concurrent-To): then its values are a list.
    return source_id, metadata_json({k: v[0] if len(v) == 1 else v for k, v in fields.items()})
