"""The build's accounting: every document is kept or counted under exactly one (stage, reason).

Partition writers each return a few `STAT_ROW` rows; the driver sums them into
`OUT/stats/drops.parquet` (stage, reason, documents, bytes) and `OUT/stats/summary.json`.
`bytes` is always the document's payload size as read, so bytes balance like documents do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from scalelab.core.arrow_schema import arrow_schema
from scalelab.core.atomic import write_json, write_parquet
from scalelab.core.storage import Location, read_parquet
from scalelab.pipelines.schema import DROPS_SCHEMA

class StatRow(NamedTuple):
    """One line of a unit's accounting, summed over units into stats/."""

    kind: str       # drop (stage, reason) | kept | kept_text (bytes = text bytes) | lang (stage = language) | pii (stage = kind)
    stage: str
    reason: str
    documents: int
    bytes: int


STAT_ROW = arrow_schema(StatRow)

STAGE_ORDER = [
    "read", "extract", "clean", "language", "gopher_repetition", "gopher_quality",
    "c4", "fineweb", "pii", "exact_dedup", "near_dedup",
]


def stat_rows(rows: list[StatRow]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(STAT_ROW.names, r)) for r in rows], schema=STAT_ROW
    )


@dataclass
class BuildStats:
    drops: list[dict[str, Any]]  # stage, reason, documents, bytes; in stage order
    documents_in: int
    bytes_in: int
    documents_kept: int
    bytes_kept: int
    text_bytes_kept: int
    languages: dict[str, dict[str, int]] = field(default_factory=dict)
    redactions: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def documents_dropped(self) -> int:
        return sum(d["documents"] for d in self.drops)

    def balanced(self) -> bool:
        return self.documents_in == self.documents_kept + self.documents_dropped

    def summary(self) -> dict[str, Any]:
        return {
            "documents_in": self.documents_in,
            "bytes_in": self.bytes_in,
            "documents_kept": self.documents_kept,
            "bytes_kept": self.bytes_kept,
            "text_bytes_kept": self.text_bytes_kept,
            "documents_dropped": self.documents_dropped,
            "languages": self.languages,
            "redactions": self.redactions,
        }


def _stage_key(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)


def aggregate(rows: pa.Table) -> BuildStats:
    sums: dict[tuple[str, str, str], list[int]] = {}
    for r in rows.to_pylist():
        acc = sums.setdefault((r["kind"], r["stage"], r["reason"]), [0, 0])
        acc[0] += r["documents"]
        acc[1] += r["bytes"]
    drops = [
        {"stage": s, "reason": reason, "documents": v[0], "bytes": v[1]}
        for (kind, s, reason), v in sums.items()
        if kind == "drop"
    ]
    drops.sort(key=lambda d: (_stage_key(d["stage"]), d["reason"]))
    kept = sums.get(("kept", "", ""), [0, 0])
    text = sums.get(("kept_text", "", ""), [0, 0])
    languages = {
        s: {"documents": v[0], "text_bytes": v[1]}
        for (kind, s, _), v in sorted(sums.items()) if kind == "lang"
    }
    redactions = {
        s: {"documents": v[0], "count": v[1]} for (kind, s, _), v in sorted(sums.items()) if kind == "pii"
    }
    return BuildStats(
        drops=drops,
        documents_in=kept[0] + sum(d["documents"] for d in drops),
        bytes_in=kept[1] + sum(d["bytes"] for d in drops),
        documents_kept=kept[0],
        bytes_kept=kept[1],
        text_bytes_kept=text[1],
        languages=languages,
        redactions=redactions,
    )


def write_stats(stats: BuildStats, out_dir: str | Path | Location) -> None:
    stats_dir = Location.of(out_dir) / "stats"
    stats_dir.mkdir()
    table = pa.Table.from_pylist(stats.drops, schema=DROPS_SCHEMA)
    write_parquet(stats_dir / "drops.parquet", table)
    write_json(stats_dir / "summary.json", stats.summary(), indent=2, sort_keys=True)


def read_stats(out_dir: str | Path | Location) -> BuildStats:
    stats_dir = Location.of(out_dir) / "stats"
    drops_path, summary_path = stats_dir / "drops.parquet", stats_dir / "summary.json"
    if not drops_path.is_file() or not summary_path.is_file():
        raise FileNotFoundError(f"{out_dir}: no build statistics (expected {drops_path} and {summary_path})")
    summary = json.loads(summary_path.read_text())
    return BuildStats(
        drops=read_parquet(drops_path).to_pylist(),
        documents_in=summary["documents_in"],
        bytes_in=summary["bytes_in"],
        documents_kept=summary["documents_kept"],
        bytes_kept=summary["bytes_kept"],
        text_bytes_kept=summary["text_bytes_kept"],
        languages=summary.get("languages", {}),
        redactions=summary.get("redactions", {}),
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
