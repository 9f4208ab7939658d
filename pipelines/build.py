"""The corpus build as one streaming Ray Data job.

    input files ─► read + per-document steps (one task per block of files)
                ─► hash shuffle on the normalized text ─► per partition: exact dedup, write Parquet
                ─► the partitions' accounting, summed in the driver

No process holds the corpus: documents stream through the steps in batches, and after the
shuffle each task holds one partition. Outputs depend only on the config and the input, never
on the number of workers: partition counts come from the config, files are sorted by id.
"""

from __future__ import annotations

import json
import hashlib
import math
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

import pyarrow as pa

from pipelines import exact_dedup
from pipelines.atomic import atomic_path
from pipelines.config import CorpusConfig
from pipelines.inputs import InputFile, resolve_inputs
from pipelines.partition_writer import write_partition
from pipelines.readers import read_input
from pipelines.schema import to_stream_table
from pipelines.stats import BuildStats, aggregate, write_stats
from pipelines.steps import Step, build_steps, run_steps

OUTPUT_FOLDERS = ("documents", "rejected", "stats")


@dataclass
class BuildResult:
    out_dir: Path
    stats: BuildStats
    num_inputs: int
    num_partitions: int
    seconds: float
    skipped_files: list[str]


def config_hash(cfg: CorpusConfig) -> str:
    canonical = json.dumps(cfg.model_dump(mode="json", exclude={"output": {"dir"}}), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def num_partitions(cfg: CorpusConfig, files: list[InputFile]) -> int:
    if cfg.output.num_partitions != "auto":
        return int(cfg.output.num_partitions)
    total = sum(f.size for f in files)
    return max(1, math.ceil(total / (cfg.output.partition_input_mb * 2**20)))


@lru_cache(maxsize=4)
def _steps_for(cfg_json: str) -> tuple[CorpusConfig, list[Step]]:
    """Steps are built once per worker process (langdetect's profiles take a second to load)."""
    cfg = CorpusConfig.model_validate_json(cfg_json)
    return cfg, build_steps(cfg)


def finish_documents(docs: list[dict[str, Any]], cfg: CorpusConfig, partitions: int) -> pa.Table:
    """After the steps: hash kept texts, route every document to its partition, slim the rows."""
    keep_rejected_text = cfg.output.write_rejected
    normalized = cfg.dedup.exact.normalize
    for doc in docs:
        doc.pop("raw", None)
        if doc["drop_reason"] is None:
            digest = exact_dedup.text_hash(doc["text"], normalized)
            doc["text_hash"] = digest
        else:
            digest = hashlib.blake2b(doc["id"].encode(), digest_size=16).digest()
            doc["text_hash"] = None
            if not keep_rejected_text:
                doc["text"] = None
        doc["partition"] = exact_dedup.partition_of(digest, partitions)
    return to_stream_table(docs)


def process_files(batch: pa.Table, cfg_json: str, partitions: int) -> Iterator[pa.Table]:
    cfg, steps = _steps_for(cfg_json)
    size = cfg.output.batch_size
    for row in batch.to_pylist():
        f = InputFile.from_dict(row)
        docs: list[dict[str, Any]] = []
        for doc in read_input(f, cfg.extract):
            docs.append(doc)
            if len(docs) >= size:
                yield finish_documents(run_steps(docs, steps), cfg, partitions)
                docs = []
        if docs:
            yield finish_documents(run_steps(docs, steps), cfg, partitions)


def _prepare_out_dir(out_dir: Path) -> None:
    # Only the folders a build writes are cleared: stale partitions from an earlier build
    # with more partitions must not mix into this one.
    for folder in OUTPUT_FOLDERS:
        shutil.rmtree(out_dir / folder, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def build_corpus(cfg: CorpusConfig, out_dir: Optional[str | Path] = None, address: Optional[str] = None) -> BuildResult:
    import ray

    from scalelab import __version__
    from scalelab.ray_session import cluster_cpus, ensure_ray

    out = Path(out_dir or cfg.output.dir or f"out/{cfg.name}")
    skipped: list[str] = []
    files = resolve_inputs(cfg.inputs, skipped=skipped)  # errors surface here, before any Ray work
    parts = num_partitions(cfg, files)
    start = time.perf_counter()
    ensure_ray(address)
    _prepare_out_dir(out)

    cfg_json = cfg.model_dump_json()
    read_blocks = min(len(files), max(4 * cluster_cpus(), math.ceil(sum(f.size for f in files) / 2**27)))
    ds = ray.data.from_items([f.to_dict() for f in files], override_num_blocks=read_blocks)
    ds = ds.map_batches(process_files, batch_size=1, batch_format="pyarrow",
                        fn_kwargs={"cfg_json": cfg_json, "partitions": parts})
    shuffle_partitions = max(1, min(parts, 4 * cluster_cpus()))
    stat_rows = ds.groupby("partition", num_partitions=shuffle_partitions).map_groups(
        _write_partition_task, batch_format="pyarrow", fn_kwargs={"cfg_json": cfg_json, "out_dir": str(out.resolve())},
    )
    rows = pa.concat_tables(ray.get(stat_rows.to_arrow_refs()))
    stats = aggregate(rows)
    write_stats(stats, out)
    seconds = time.perf_counter() - start
    with atomic_path(out / "build.json") as tmp:
        Path(tmp).write_text(json.dumps({
            "scalelab_version": __version__,
            "config_hash": config_hash(cfg),
            "config": cfg.model_dump(mode="json"),
            "inputs": [{"key": f.key, "type": f.type, "size": f.size} for f in files],
            "skipped_files": skipped,
            "num_partitions": parts,
            "seconds": round(seconds, 3),
        }, indent=2) + "\n")
    return BuildResult(out_dir=out, stats=stats, num_inputs=len(files), num_partitions=parts, seconds=seconds,
                       skipped_files=skipped)


def _write_partition_task(group: pa.Table, cfg_json: str, out_dir: str) -> pa.Table:
    cfg, _ = _steps_for(cfg_json)
    return write_partition(group, cfg, out_dir)
