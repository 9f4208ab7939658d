"""The crawl log (`OUT/crawl_log.parquet`): one row per URL the crawl met, and the totals.

Every URL is accounted for: fetched (with its HTTP status), failed (timeout, connection,
too_large), skipped (content_type, robots), refused (private_address: the host resolves to a
non-public address), not followed (out_of_scope with the reason, or
invalid_url), or still queued when a limit stopped the crawl. robots.txt fetches are rows of
kind `robots`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from scalelab.core.atomic import write_parquet

LOG_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("host", pa.string()),
    ("kind", pa.string()),          # page, robots, discovered (not followed), seed (not a URL)
    ("depth", pa.int32()),
    ("status", pa.int32()),         # HTTP status; null when no response
    ("bytes", pa.int64()),          # body bytes received
    ("error", pa.string()),         # null, or timeout, connection, too_large, content_type, robots,
                                    # private_address, http_4xx, http_5xx, out_of_scope, invalid_url,
                                    # crawler_error
    ("detail", pa.string()),
    ("content_type", pa.string()),
    ("time", pa.timestamp("ms", tz="UTC")),  # when the request was sent (or the URL was judged)
    ("seconds", pa.float64()),
    ("actor", pa.int32()),
    ("session", pa.int32()),
    ("warc_file", pa.string()),
    ("redirect", pa.string()),      # a 3xx's Location, normalized
])

FAILURES = ("timeout", "connection", "too_large", "http_4xx", "http_5xx", "crawler_error")
# Page rows that were judged, not fetched: they don't count against limits.max_pages.
NOT_FETCHED = ("robots", "private_address")


def write_log(rows: list[dict[str, Any]], path: Path) -> None:
    table = pa.table({name: [r.get(name) for r in rows] for name in LOG_SCHEMA.names if name != "time"})
    times = pa.array([int(r["time"] * 1000) if r.get("time") is not None else None for r in rows], pa.int64())
    table = table.append_column("time", times.cast(pa.timestamp("ms", tz="UTC")))
    table = table.select(LOG_SCHEMA.names).cast(LOG_SCHEMA)
    write_parquet(path, table, compression="zstd")


def totals(rows: list[dict[str, Any]], queued_left: int) -> dict[str, Any]:
    pages = [r for r in rows if r["kind"] == "page"]
    fetched = [r for r in pages if r["status"] is not None and r["error"] in (None, "http_4xx", "http_5xx")]
    failed = Counter(r["error"] for r in pages if r["error"] in FAILURES)
    skipped = Counter(r["error"] for r in pages if r["error"] in ("robots", "content_type", "private_address"))
    out_of_scope = Counter(r["detail"] for r in rows if r["kind"] == "discovered")
    return {
        "fetched": len(fetched),
        "fetched_ok": sum(1 for r in fetched if 200 <= r["status"] < 300),
        "redirects": sum(1 for r in fetched if 300 <= r["status"] < 400),
        "bytes": sum(r["bytes"] or 0 for r in fetched),
        "skipped_robots": skipped["robots"],
        "skipped_content_type": skipped["content_type"],
        "refused_private_address": skipped["private_address"],
        "out_of_scope": sum(out_of_scope.values()),
        "out_of_scope_by_reason": dict(sorted(out_of_scope.items())),
        "failed": sum(failed.values()),
        "failed_by_reason": dict(sorted(failed.items())),
        "invalid_seeds": sum(1 for r in rows if r["kind"] == "seed"),
        "robots_fetches": sum(1 for r in rows if r["kind"] == "robots"),
        "left_in_frontier": queued_left,
    }
