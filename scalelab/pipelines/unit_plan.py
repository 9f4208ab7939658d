"""The process phase's unit plan: which files, or parts of files, each task reads.

Units are sized by the bytes a task will read uncompressed, so the work spreads over the cluster's
cores whatever the files look like: a large WARC is cut at record starts into parts
(readers/warc_index.py), and parts and small files are packed into units of similar cost.

Outputs never depend on the plan: a document's id is its file's key and its record's offset,
and every partition is sorted by id. The plan only decides how busy the cores are.
"""

from __future__ import annotations

import math
from dataclasses import replace

import ray

from scalelab.pipelines.inputs import InputFile
from scalelab.pipelines.readers.warc_index import record_starts, split_by_bytes

MIN_PART_BYTES = 8 * 2**20  # below this a part's start-up costs more than the cores it frees
UNITS_PER_CPU = 4           # several units a core, so the last ones finish close together


def expected_read_bytes(f: InputFile) -> float:
    """Uncompressed bytes a task reads: known for a WARC part, else guessed (compressed bytes
    expand about fourfold)."""
    if f.read_bytes is not None:
        return f.read_bytes
    compressed = f.uri.endswith((".gz", ".zst")) or f.type == "parquet"
    return f.size * (4 if compressed else 1)


def estimated_cost(f: InputFile) -> float:
    """Rough work to process a file or part, for balancing only: text costs more per byte than HTML."""
    return expected_read_bytes(f) * (1 if f.type in ("warc", "html") else 3)


def part_bytes(files: list[InputFile], cpus: int, unit_input_mb: int) -> int:
    """The size of a part: enough parts for every core to have several, no larger than a unit."""
    total = sum(expected_read_bytes(f) for f in files)
    return int(min(unit_input_mb * 2**20, max(MIN_PART_BYTES, total / (UNITS_PER_CPU * cpus))))


def _splittable(f: InputFile, target: int) -> bool:
    return f.type == "warc" and expected_read_bytes(f) > 1.5 * target


def split_large_warcs(files: list[InputFile], target: int) -> list[InputFile]:
    """Cut each WARC much larger than `target` into parts of about `target` uncompressed bytes.
    Record starts are found by Ray tasks, one per file; a file that cannot be walked stays whole."""
    large = [f for f in files if _splittable(f, target)]
    if not large:
        return files
    index = ray.remote(num_cpus=1, max_retries=3)(record_starts)
    starts = dict(zip((f.index for f in large), ray.get([index.remote(f.uri) for f in large])))
    out: list[InputFile] = []
    for f in files:
        records = starts.get(f.index)
        if not records:
            out.append(f)
            continue
        out += [replace(f, start=r.start, end=r.end, read_bytes=r.read_bytes) for r in split_by_bytes(records, target)]
    return out


def plan_read_units(files: list[InputFile], num_units: int) -> list[list[InputFile]]:
    """Group files and parts into units of similar cost (largest first, each to the lightest unit)."""
    num_units = max(1, min(num_units, len(files)))
    units: list[list[InputFile]] = [[] for _ in range(num_units)]
    load = [0.0] * num_units
    for f in sorted(files, key=lambda f: (-estimated_cost(f), f.index, f.start)):
        i = min(range(num_units), key=lambda k: (load[k], k))
        units[i].append(f)
        load[i] += estimated_cost(f) + 1
    return [sorted(u, key=lambda f: (f.index, f.start)) for u in units if u]


def plan_units(files: list[InputFile], cpus: int, unit_input_mb: int) -> list[list[InputFile]]:
    """The whole plan: large WARCs cut into parts, then packed into units."""
    target = part_bytes(files, cpus, unit_input_mb)
    parts = split_large_warcs(files, target)
    total = sum(expected_read_bytes(f) for f in parts)
    return plan_read_units(parts, max(UNITS_PER_CPU * cpus, math.ceil(total / (unit_input_mb * 2**20))))
