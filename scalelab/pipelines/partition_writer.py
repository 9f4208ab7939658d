"""The last step of a build, run once per hash partition after the shuffle.

It sees every document of its partition (kept and dropped), removes exact duplicates,
writes the kept documents sorted by id (so file bytes don't depend on arrival order) and,
optionally, the rejected ones; then it returns its share of the accounting.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scalelab.pipelines import exact_dedup
from scalelab.core.atomic import atomic_path
from scalelab.core.storage import Location
from scalelab.pipelines.config import CorpusConfig
from scalelab.pipelines.schema import DOCUMENT_SCHEMA, REJECTED_SCHEMA, STAGED_SCHEMA
from scalelab.pipelines.stats import StatRow, stat_rows

ROW_GROUP_SIZE = 4096


def partition_file(out_dir: str | Path | Location, folder: str, partition: int) -> Location:
    return Location.of(out_dir) / folder / f"part-{partition:05d}.parquet"


def _write(table: pa.Table, schema: pa.Schema, path: Location, compression: str) -> None:
    table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(
            table, tmp, compression=None if compression == "none" else compression,
            row_group_size=ROW_GROUP_SIZE, write_statistics=True,
        )


def write_partition(group: pa.Table, cfg: CorpusConfig, out_dir: str) -> pa.Table:
    partition = group.column("partition")[0].as_py()
    dropped_mask = pc.is_valid(group.column("drop_reason"))
    dropped = group.filter(dropped_mask)
    kept = group.filter(pc.invert(dropped_mask))

    duplicates = kept.slice(0, 0).append_column("cluster_id", pa.array([], pa.string()))
    if cfg.dedup.exact.enabled:
        kept, duplicates = exact_dedup.mark_duplicates(kept)
    kept = kept.take(pc.sort_indices(kept, sort_keys=[("id", "ascending")]))

    near_dedup_follows = cfg.dedup.minhash.enabled
    if kept.num_rows:
        # With near-dedup to come, the documents are staged (with what its accounting needs).
        folder, schema = ("phase/exact_kept", STAGED_SCHEMA) if near_dedup_follows else ("documents", DOCUMENT_SCHEMA)
        _write(kept, schema, partition_file(out_dir, folder, partition), cfg.output.compression)

    rows: list[StatRow] = []
    for (stage, reason), (n, b) in _sum_by(dropped, ["drop_stage", "drop_reason"]).items():
        rows.append(StatRow("drop", stage, reason, n, b))
    if duplicates.num_rows:
        rows.append(StatRow("drop", exact_dedup.STAGE, exact_dedup.REASON, duplicates.num_rows, _total(duplicates["raw_bytes"])))
    if not near_dedup_follows:
        rows += kept_stat_rows(kept)

    if cfg.output.write_rejected:
        rejected = pa.concat_tables([
            dropped.append_column("cluster_id", pa.nulls(dropped.num_rows, pa.string())),
            duplicates.set_column(
                duplicates.schema.get_field_index("drop_stage"), "drop_stage",
                pa.array([exact_dedup.STAGE] * duplicates.num_rows, pa.string()),
            ).set_column(
                duplicates.schema.get_field_index("drop_reason"), "drop_reason",
                pa.array([exact_dedup.REASON] * duplicates.num_rows, pa.string()),
            ),
        ])
        if rejected.num_rows:
            rejected = rejected.take(pc.sort_indices(rejected, sort_keys=[("id", "ascending")]))
            _write(rejected, REJECTED_SCHEMA, partition_file(out_dir, "rejected", partition), cfg.output.compression)
    return stat_rows(rows)


def kept_stat_rows(kept: pa.Table) -> list[StatRow]:
    """The accounting of the documents that made it to the output: counts, bytes, languages, PII."""
    text_bytes = pc.binary_length(pc.cast(kept["text"], pa.large_binary()))
    rows = [StatRow("kept", "", "", kept.num_rows, _total(kept["raw_bytes"])),
            StatRow("kept_text", "", "", kept.num_rows, _total(text_bytes))]
    docs_by_lang: Counter[str] = Counter()
    bytes_by_lang: Counter[str] = Counter()
    for lang, size in zip(kept["lang"].to_pylist(), text_bytes.to_pylist()):
        docs_by_lang[lang or "unknown"] += 1
        bytes_by_lang[lang or "unknown"] += size
    rows += [StatRow("lang", lang, "", docs_by_lang[lang], bytes_by_lang[lang]) for lang in sorted(docs_by_lang)]
    for kind in ("email", "ip", "phone"):
        counts = kept[f"pii_{kind}"]
        rows.append(StatRow("pii", kind, "", _total(pc.greater(counts, 0)), _total(counts)))
    return rows


def write_documents(table: pa.Table, path: Location, compression: str) -> None:
    _write(table, DOCUMENT_SCHEMA, path, compression)


def write_rejected(table: pa.Table, path: Location, compression: str) -> None:
    _write(table, REJECTED_SCHEMA, path, compression)


def _total(values: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(values).as_py() or 0)


def _sum_by(table: pa.Table, keys: list[str]) -> dict[tuple[str, ...], tuple[int, int]]:
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(keys).aggregate([("raw_bytes", "sum"), ("raw_bytes", "count")])
    out = {}
    for r in grouped.to_pylist():
        out[tuple(r[k] for k in keys)] = (r["raw_bytes_count"], r["raw_bytes_sum"] or 0)
    return out
