"""datatrove's web pipeline on one WARC, for bench/web_scale.py to compare with. Runs in a side venv
with datatrove installed (never scalelab's dependency):

    python -m venv ../side-venv && ../side-venv/bin/pip install "datatrove[processing]==0.10.1"
    ../side-venv/bin/python bench/datatrove_pipeline.py FILE.warc.gz OUT_DIR

The steps FineWeb uses up to its quality filters: WARC reader, Trafilatura, Gopher repetition and
quality, C4 quality and FineWeb quality, JSONL writer; no language ID, no dedup, no tokenizer. One
task, one worker: the CPU seconds are one core's. Prints one JSON line: cpu_s, wall_s, documents
read and kept.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import JsonlWriter


def main() -> None:
    warc, out = Path(sys.argv[1]), Path(sys.argv[2])
    pipeline = [
        WarcReader(str(warc.parent), glob_pattern=warc.name),
        Trafilatura(favour_precision=True, timeout=5.0),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        JsonlWriter(str(out / "output")),
    ]
    t = time.perf_counter()
    executor = LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=str(out / "logs"))
    executor.run()
    wall = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
    stats = json.loads((out / "logs" / "stats.json").read_text())
    print(json.dumps({"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "stats": stats}))


if __name__ == "__main__":
    main()
