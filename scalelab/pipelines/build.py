"""The corpus build: phases of units on Ray, each unit checkpointed, so a stopped build resumes.

    input files ─► process (one task per unit of files): read + per-document steps, every document
                   (kept or dropped) routed to its hash partition ─► phase/process/unit-N.parquet
                ─► exact_dedup (one task per partition): that partition's rows from every unit, exact
                   dedup, write ─► documents/ (or phase/exact_kept/ when near-dedup follows), accounting
                ─► near_find + near_rewrite (minhash/near_dedup.py) ─► documents/
                ─► the units' accounting, summed in the driver ─► stats/
                ─► tokenizer, tokenize, shards (shards/build_shards.py) ─► shards/, manifest.json

Each unit's task writes its outputs through temporary names and then its done record
(`scalelab/core/build_units.py`); a rerun of the same command skips done units and gives the same bytes as a
build that never stopped. Outputs depend only on the config and the input, never on the number
of workers: the unit plan is saved at the start, partition counts come from the config, files
are sorted by id.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import ray

from scalelab import __version__
from scalelab.core.atomic import atomic_path, write_json
from scalelab.core.build_units import PHASE_ROOT, BuildError, Phase, run_units, write_record
from scalelab.core.config import ConfigError, changed_fields
from scalelab.core.output_folder import claim
from scalelab.core.ray_session import cluster_cpus, ensure_ray
from scalelab.core.storage import Location, parquet_file
from scalelab.pipelines import build_outputs, exact_dedup
from scalelab.pipelines.build_status import DRIVER, FINISHED
from scalelab.pipelines.config import RESUMABLE_CHANGES, CorpusConfig, config_hash
from scalelab.pipelines.fault_hooks import maybe_fail
from scalelab.pipelines.inputs import InputFile, resolve_inputs
from scalelab.pipelines.minhash.near_dedup import NearDedupResult, run_near_dedup
from scalelab.pipelines.partition_writer import write_partition
from scalelab.pipelines.readers import read_input
from scalelab.pipelines.schema import STREAM_SCHEMA, Document, to_stream_table
from scalelab.pipelines.shards.build_shards import ShardsResult, build_shards
from scalelab.pipelines.stats import BuildStats, aggregate, stat_rows, write_stats
from scalelab.pipelines.steps import Step, build_steps, run_steps
from scalelab.pipelines.unit_plan import expected_read_bytes, plan_units

BUILD_KIND = "corpus build"
BUILD_CONFIG = "build_config.json"
PROCESS_ROW_GROUP = 1024  # at most; a row group holds one partition's rows (_write_by_partition)


@dataclass
class BuildResult:
    out_dir: Location
    stats: BuildStats
    num_inputs: int
    num_partitions: int
    seconds: float
    skipped_files: list[str]
    near_dedup: Optional[NearDedupResult] = None
    shards: Optional[ShardsResult] = None
    resumed_units: dict[str, int] = field(default_factory=dict)  # phase -> units already done


def num_partitions(cfg: CorpusConfig, files: list[InputFile]) -> int:
    if cfg.output.num_partitions != "auto":
        return int(cfg.output.num_partitions)
    # Uncompressed, as the unit plan counts it: a partition's documents are what a task holds.
    total = sum(expected_read_bytes(f) for f in files)
    return max(1, math.ceil(total / (cfg.output.partition_input_mb * 2**20)))


@lru_cache(maxsize=4)
def _steps_for(cfg_json: str) -> tuple[CorpusConfig, list[Step]]:
    """Steps are built once per worker process (langdetect's profiles take a second to load)."""
    cfg = CorpusConfig.model_validate_json(cfg_json)
    return cfg, build_steps(cfg)


def finish_documents(docs: list[Document], cfg: CorpusConfig, partitions: int) -> pa.Table:
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
                doc["text"] = doc["metadata"] = None
        doc["partition"] = exact_dedup.partition_of(digest, partitions)
    return to_stream_table(docs)


# ---------------------------------------------------------------------------------- starting
def _fingerprint(cfg: CorpusConfig) -> dict[str, Any]:
    return {"scalelab_version": __version__, "config": cfg.model_dump(mode="json")}


def _input_changes(planned: list[dict[str, Any]], files: list[InputFile]) -> list[str]:
    now = {f.key: f for f in files}
    then = {f["key"]: f for f in planned}
    changes = [f"{k} (gone)" for k in sorted(set(then) - set(now))]
    changes += [f"{k} (new)" for k in sorted(set(now) - set(then))]
    for k in sorted(set(now) & set(then)):
        if (now[k].size, now[k].mtime) != (then[k]["size"], then[k]["mtime"]):
            changes.append(f"{k} (size {then[k]['size']} -> {now[k].size}, modified)")
    return changes


def output_dir(cfg: CorpusConfig, out_dir: Optional[str | Path | Location] = None) -> Location:
    """`--out`, else output.dir, else out/NAME: a local folder or an object-storage URL (s3://bucket/prefix)."""
    return Location.of(out_dir or cfg.output.dir or f"out/{cfg.name}")


def _start(cfg: CorpusConfig, out: Location, files: list[InputFile], force: bool, overwrite: bool) -> None:
    """Refuse a folder of the user's, a different config or changed inputs in an existing build;
    clear the build's own files for a fresh one."""
    marker = out / PHASE_ROOT / BUILD_CONFIG
    # Builds from before the folder marker are recognized by their config record.
    claim(out, BUILD_KIND, overwrite, legacy=(f"{PHASE_ROOT}/{BUILD_CONFIG}",))
    if marker.is_file() and not force:
        old = json.loads(marker.read_text())
        differ = changed_fields(old["config"], _fingerprint(cfg)["config"], RESUMABLE_CHANGES)
        if differ:
            raise ConfigError(f"{out}: holds a build with other settings ({', '.join(differ)}); rerun with "
                              "the same config to resume it, or pass --force to start over")
        plan = Phase(out, "process").plan()
        if plan is not None:
            changes = _input_changes([f for u in plan["units"] for f in u["files"]], files)
            if changes:
                raise BuildError(f"{out}: inputs changed since this build started: {', '.join(changes[:10])}"
                                 f"{' ...' if len(changes) > 10 else ''}; pass --force to start over with the inputs as they are now")
        return
    # A fresh build: only the files a build writes are cleared, so stale partitions of an
    # earlier build never mix into this one and the user's own files stay.
    build_outputs.clear(out)
    try:
        out.mkdir()
        write_record(marker, _fingerprint(cfg))
    except OSError as exc:
        raise BuildError(f"{out}: cannot write the build's output there: {exc}") from None


# ---------------------------------------------------------------------------------- process
def _changed_since_planned(f: InputFile) -> Optional[str]:
    if "://" in f.uri and not f.uri.startswith("file://"):
        return None  # remote: checked by size when the build (re)starts
    try:
        st = os.stat(f.uri.removeprefix("file://"))
    except OSError as exc:
        return f"{f.key}: {exc.strerror}"
    if (st.st_size, st.st_mtime) != (f.size, f.mtime):
        return f"{f.key}: changed since the build started (size {f.size} -> {st.st_size})"
    return None


def process_unit(unit: dict[str, Any], cfg_json: str, partitions: int, out_dir: str) -> int:
    """Read a unit's files and run the steps; write every document, sorted by (partition, id)."""
    phase = Phase(out_dir, "process")
    name = unit["name"]
    phase.mark_started(name)
    cfg, steps = _steps_for(cfg_json)
    size = cfg.output.batch_size
    tables: list[pa.Table] = []
    for row in unit["files"]:
        f = InputFile.from_dict(row)
        changed = _changed_since_planned(f)
        if changed:
            raise BuildError(f"input {changed}; it would mix old and new data (pass --force to start over)")
        docs: list[Document] = []
        for doc in read_input(f, cfg.extract):
            docs.append(doc)
            if len(docs) >= size:
                tables.append(finish_documents(run_steps(docs, steps), cfg, partitions))
                docs = []
        if docs:
            tables.append(finish_documents(run_steps(docs, steps), cfg, partitions))
    table = pa.concat_tables(tables) if tables else STREAM_SCHEMA.empty_table()
    table = table.sort_by([("partition", "ascending"), ("id", "ascending")])
    with atomic_path(phase.output(name)) as tmp:
        _write_by_partition(table, tmp)
        maybe_fail("process", name)
    phase.finish(name, documents=table.num_rows)
    return table.num_rows


def _write_by_partition(table: pa.Table, path: str) -> None:
    """Row groups that never span two partitions, so each exact-dedup task reads its own rows and
    nothing else (its filter skips every other row group by its statistics)."""
    partitions = table.column("partition").to_numpy()
    bounds = np.flatnonzero(np.diff(partitions)) + 1
    with pq.ParquetWriter(path, table.schema, compression="zstd", write_statistics=True) as writer:
        for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(partitions)]):
            writer.write_table(table.slice(start, end - start), row_group_size=PROCESS_ROW_GROUP)


# ---------------------------------------------------------------------------------- exact
def exact_unit(unit: dict[str, Any], process_files: list[str], cfg_json: str, out_dir: str) -> int:
    """One hash partition: its rows from every processed unit, exact dedup, written."""
    phase = Phase(out_dir, "exact_dedup")
    name = unit["name"]
    phase.mark_started(name)
    cfg, _ = _steps_for(cfg_json)
    group = _partition_rows(process_files, unit["partition"])
    maybe_fail("exact_dedup", name)
    rows = write_partition(group, cfg, out_dir) if group.num_rows else stat_rows([])
    phase.finish(name, rows)
    return group.num_rows


def _partition_rows(process_files: list[str], partition: int) -> pa.Table:
    """One partition's rows of every processed unit, file after file: only the row groups whose
    statistics admit it are read, so a task holds its partition and one file's share at a time."""
    tables = []
    for path in process_files:
        source = parquet_file(Location.of(path))
        column = source.schema_arrow.get_field_index("partition")
        groups = [i for i in range(source.num_row_groups)
                  if _may_hold(source.metadata.row_group(i).column(column).statistics, partition)]
        if groups:
            rows = source.read_row_groups(groups, use_threads=False)
            tables.append(rows.filter(pc.equal(rows.column("partition"), partition)))
    return pa.concat_tables(tables).cast(STREAM_SCHEMA) if tables else STREAM_SCHEMA.empty_table()


def _may_hold(statistics, partition: int) -> bool:
    if statistics is None or not statistics.has_min_max:
        return True
    return statistics.min <= partition <= statistics.max


# ---------------------------------------------------------------------------------- the build
def build_corpus(cfg: CorpusConfig, out_dir: Optional[str | Path | Location] = None, address: Optional[str] = None,
                 force: bool = False, log: Optional[Callable[[str], None]] = None,
                 overwrite: bool = False) -> BuildResult:
    """Build (or resume building) the corpus into `out_dir`; `force` starts over; `overwrite`
    writes into a non-empty folder that scalelab did not create (replacing only the build's files)."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    out = output_dir(cfg, out_dir)
    skipped: list[str] = []
    files = resolve_inputs(cfg.inputs, skipped=skipped)  # errors surface here, before any Ray work
    start = time.perf_counter()
    _start(cfg, out, files, force, overwrite)
    (out / PHASE_ROOT / FINISHED).unlink(missing_ok=True)
    write_record(out / PHASE_ROOT / DRIVER, {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    ensure_ray(address)
    cfg_json = cfg.model_dump_json()
    out_abs = str(out.resolve())
    resumed: dict[str, int] = {}

    process = Phase(out, "process")
    plan = process.ensure_plan(lambda: {
        "partitions": num_partitions(cfg, files),
        "units": [{"name": f"unit-{i:05d}", "files": [f.to_dict() for f in u]}
                  for i, u in enumerate(plan_units(files, cluster_cpus(), cfg.output.unit_input_mb))],
    })
    parts = plan["partitions"]
    task = ray.remote(max_retries=3)(process_unit)
    resumed["process"] = run_units(process, lambda u: task.remote(u, cfg_json, parts, out_abs), say)

    exact = Phase(out, "exact_dedup")
    exact.ensure_plan(lambda: {"units": [{"name": f"part-{p:05d}", "partition": p} for p in range(parts)]})
    process_files = [str(process.output(u)) for u in process.units()]
    task = ray.remote(max_retries=3)(exact_unit)
    resumed["exact_dedup"] = run_units(exact, lambda u: task.remote(u, process_files, cfg_json, out_abs), say)
    rows = exact.stat_rows(exact.units())

    near = None
    if cfg.dedup.minhash.enabled:
        near = run_near_dedup(cfg, out, say)
        resumed.update(near.resumed_units)
        if near.stat_rows.num_rows:
            rows.append(near.stat_rows)
    stats = aggregate(pa.concat_tables(rows) if rows else stat_rows([]))
    write_stats(stats, out)
    shards = None
    if cfg.shards.enabled:
        shards = build_shards(cfg, out, stats.documents_kept, say)
        resumed.update(shards.resumed_units)
    seconds = time.perf_counter() - start
    write_json(out / "build.json", {
            "scalelab_version": __version__,
            "config_hash": config_hash(cfg),
            "config": cfg.model_dump(mode="json"),
            "inputs": [{"key": f.key, "type": f.type, "size": f.size} for f in files],
            "skipped_files": skipped,
            "num_partitions": parts,
            "near_dedup": None if near is None else {
                "bands": near.bands, "rows": near.rows, "candidate_edges": near.candidate_edges,
                "verified_edges": near.verified_edges, "clusters": near.clusters, "duplicates": near.duplicates,
                "components": near.components,
                "seconds": {k: round(v, 3) for k, v in near.seconds.items()},
            },
            "resumed_units": resumed,
            "seconds": round(seconds, 3),
        }, indent=2)
    if not cfg.output.keep_phase_data:
        _remove_phase_data(out)
    write_record(out / PHASE_ROOT / FINISHED, {"finished": time.time(), "seconds": round(seconds, 3), "resumed_units": resumed})
    (out / PHASE_ROOT / DRIVER).unlink(missing_ok=True)
    return BuildResult(out_dir=out, stats=stats, num_inputs=len(files), num_partitions=parts, seconds=seconds,
                       skipped_files=skipped, near_dedup=near, shards=shards, resumed_units=resumed)


def _remove_phase_data(out: Location) -> None:
    """A finished build keeps its phases' records (a rerun then has nothing to do) but not the
    intermediate documents and tokens, which are as large as the corpus."""
    for folder in build_outputs.BUILD_FILES:
        if not folder.startswith(f"{PHASE_ROOT}/"):
            continue
        for path in (out / folder).glob("*.parquet"):
            if not path.name.endswith(".stats.parquet"):
                path.unlink()
